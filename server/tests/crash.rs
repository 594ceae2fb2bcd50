//! Nothing is lost across a crash: the real `dropcheck` binary is killed with SIGKILL in the
//! middle of a burst of 1 000 inbound webhooks and 1 000 queued sends, then restarted on the
//! same database. Every webhook it answered 200 is processed, and every queued message
//! reaches the (mock) provider; a message goes twice only if the kill fell between the
//! provider accepting it and the id being recorded. On SQLite and on PostgreSQL.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;
use dropcheck_core::domain::{Phone, DEFAULT_DROP_PATTERN};
use dropcheck_core::providers::twilio_signature;
use dropcheck_core::store::Store;
use dropcheck_core::testing::TestDb;
use std::collections::{HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SID: &str = "AC00000000000000000000000000000002";
const TOKEN: &str = "crash-test-auth-token";
const PUBLIC: &str = "https://dropcheck.example";
const WEBHOOKS: usize = 1000;
const SENDS: usize = 1000;
const NUMBERS: usize = 50;

#[derive(Default)]
struct Sent {
    bodies: HashMap<String, usize>,
    /// (to, body, sid) in order, for the message list.
    log: Vec<(String, String, String)>,
}

async fn mock_send(State(s): State<Arc<Mutex<Sent>>>, body: String) -> impl IntoResponse {
    // A provider's API takes a while to answer (Twilio: tens of milliseconds), so the kill
    // falls in the middle of the sends rather than after them; the message counts as
    // accepted from here, before the answer reaches the sender, as with a real provider.
    let form: Vec<(String, String)> = form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    let get = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default();
    let n: usize = {
        let mut s = s.lock().unwrap();
        *s.bodies.entry(get("Body")).or_default() += 1;
        let n = s.log.len() + 1;
        s.log.push((get("To"), get("Body"), format!("SM{n:032}")));
        n
    };
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    (StatusCode::CREATED, format!(r#"{{"sid": "SM{n:032}", "status": "queued"}}"#))
}

/// Twilio's message list: what the sender consults before resending a message whose send
/// was interrupted.
async fn mock_list(State(s): State<Arc<Mutex<Sent>>>, Query(q): Query<Vec<(String, String)>>) -> impl IntoResponse {
    let to = q.iter().find(|(k, _)| k == "To").map(|(_, v)| v.clone()).unwrap_or_default();
    let s = s.lock().unwrap();
    let messages: Vec<serde_json::Value> = s
        .log
        .iter()
        .filter(|(t, _, _)| *t == to)
        .map(|(t, b, sid)| serde_json::json!({"sid": sid, "to": t, "body": b, "status": "sent"}))
        .collect();
    (StatusCode::OK, serde_json::json!({ "messages": messages }).to_string())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start_server(db_url: &str, data: &std::path::Path, port: u16, mock: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_dropcheck"))
        .arg("serve")
        .env("DATABASE_URL", db_url)
        .env("DROPCHECK_DATA_DIR", data)
        .env("DROPCHECK_PUBLIC_URL", PUBLIC)
        .env("DROPCHECK_PROVIDER", "twilio")
        .env("TWILIO_ACCOUNT_SID", SID)
        .env("TWILIO_AUTH_TOKEN", TOKEN)
        .env("TWILIO_WHATSAPP_NUMBER", "+14155238886")
        .env("TWILIO_API_BASE", mock)
        .env("DROPCHECK_RETRY_BASE_SECONDS", "0")
        .env("DROPCHECK_SEND_RATE", "10000")
        .env("DROPCHECK_WORKER_LEASE_SECONDS", "3")
        .env("LEPTOS_SITE_ADDR", format!("127.0.0.1:{port}"))
        .env("LEPTOS_SITE_ROOT", data)
        .env("LEPTOS_OUTPUT_NAME", "dropcheck")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the dropcheck binary starts")
}

async fn wait_healthy(client: &reqwest::Client, base: &str) {
    for _ in 0..400 {
        if client.get(format!("{base}/health")).send().await.is_ok_and(|r| r.status().is_success()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the server did not become healthy");
}

fn phone(i: usize) -> String {
    format!("+2764{:07}", 1_000_000 + i % NUMBERS)
}

/// Sends webhook `i` once; true when the server answered 200 (accepted).
async fn deliver(client: &reqwest::Client, base: &str, i: usize) -> bool {
    let params: Vec<(String, String)> = vec![
        ("MessageSid".into(), format!("SMcrash{i:06}")),
        ("From".into(), format!("whatsapp:{}", phone(i))),
        ("Body".into(), format!("note {i}")),
        ("NumMedia".into(), "0".into()),
    ];
    let sig = twilio_signature(TOKEN, &format!("{PUBLIC}/webhooks/twilio"), &params);
    match client
        .post(format!("{base}/webhooks/twilio"))
        .header("X-Twilio-Signature", sig)
        .form(&params)
        .timeout(Duration::from_secs(10))
        .send()
        .await
    {
        Ok(r) => r.status() == StatusCode::OK,
        Err(_) => false,
    }
}

async fn scenario(db: &TestDb) {
    let store: &Store = &db.store;
    store.create_project("Velo Test", DEFAULT_DROP_PATTERN).await.unwrap();
    let sent: Arc<Mutex<Sent>> = Arc::default();
    let app = Router::new().route("/2010-04-01/Accounts/{sid}/Messages.json", post(mock_send).get(mock_list)).with_state(sent.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mock = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    // Each number has written recently (the 24-hour window is open), then 1 000 messages queue.
    let now = dropcheck_core::now_ms();
    for i in 0..NUMBERS {
        let p = Phone::parse(&phone(i)).unwrap();
        store.upsert_contact(&p, "").await.unwrap();
        store.note_inbound(&p, now).await.unwrap();
    }
    for i in 0..SENDS {
        store.queue_message(&Phone::parse(&phone(i)).unwrap(), &format!("send {i}"), None, now).await.unwrap();
    }

    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut server = start_server(&db.url, data.path(), port, &mock);
    wait_healthy(&client, &base).await;

    // The burst: 6 at a time; the server is killed once a third has been accepted and sends are under way.
    let accepted: Arc<Mutex<HashSet<usize>>> = Arc::default();
    let next = Arc::new(Mutex::new(0usize));
    let burst = |base: String| {
        let (accepted, next, client) = (accepted.clone(), next.clone(), client.clone());
        async move {
            let mut tasks = vec![];
            for _ in 0..6 {
                let (accepted, next, client, base) = (accepted.clone(), next.clone(), client.clone(), base.clone());
                tasks.push(tokio::spawn(async move {
                    loop {
                        let i = {
                            let mut n = next.lock().unwrap();
                            if *n >= WEBHOOKS {
                                return;
                            }
                            *n += 1;
                            *n - 1
                        };
                        if deliver(&client, &base, i).await {
                            accepted.lock().unwrap().insert(i);
                        }
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
        }
    };
    let first = tokio::spawn(burst(base.clone()));
    let t0 = Instant::now();
    let sent_count = || sent.lock().unwrap().bodies.len();
    while (accepted.lock().unwrap().len() < WEBHOOKS / 3 || sent_count() < 10) && t0.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill().expect("SIGKILL"); // Child::kill is SIGKILL on Unix
    server.wait().unwrap();
    first.await.unwrap();
    let sent_before = sent.lock().unwrap().bodies.len();
    let accepted_before = accepted.lock().unwrap().len();
    assert!(accepted_before >= WEBHOOKS / 3 && accepted_before < WEBHOOKS, "the kill fell inside the webhook burst ({accepted_before})");
    assert!(sent_before >= 10 && sent_before < SENDS, "the kill fell inside the sends ({sent_before})");

    // Restart on the same database; the provider redelivers everything not acknowledged.
    let mut server = start_server(&db.url, data.path(), port, &mock);
    wait_healthy(&client, &base).await;
    let missing: Vec<usize> = (0..WEBHOOKS).filter(|i| !accepted.lock().unwrap().contains(i)).collect();
    for i in missing {
        let mut ok = false;
        for _ in 0..5 {
            if deliver(&client, &base, i).await {
                ok = true;
                break;
            }
        }
        assert!(ok, "webhook {i} accepted after the restart");
        accepted.lock().unwrap().insert(i);
    }

    // Everything settles: every webhook processed once, every message sent.
    let t0 = Instant::now();
    loop {
        let (pending, done, failed) = store.event_counts().await.unwrap();
        let all_sent = (0..SENDS).all(|i| sent.lock().unwrap().bodies.contains_key(&format!("send {i}")));
        if pending == 0 && all_sent {
            assert_eq!((done, failed), (WEBHOOKS as i64, 0), "each webhook is one processed event");
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "not settled: {pending} events pending, sent {}",
            sent.lock().unwrap().bodies.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let f = dropcheck_core::outbox::MessageFilter { direction: Some("in".into()), ..Default::default() };
    let (inbound, _) = store.list_messages(&f, None, 200).await.unwrap();
    assert!(!inbound.is_empty());
    let dupes: usize = {
        let s = sent.lock().unwrap();
        (0..SENDS).map(|i| s.bodies[&format!("send {i}")] - 1).sum()
    };
    // A message in flight at the kill is looked up in the provider's list before it is sent
    // again, so none goes twice (the spec allows a duplicate only in the instant between
    // the provider accepting a message and the id being recorded).
    assert!(dupes <= 1, "{dupes} duplicate sends");
    eprintln!("accepted before the kill: {accepted_before}, sent before: {sent_before}, duplicate sends: {dupes}");
    server.kill().ok();
    server.wait().ok();
}

#[tokio::test]
async fn a_sigkill_mid_burst_loses_no_webhook_and_no_message() {
    use futures_util::FutureExt;
    for db in [Some(TestDb::sqlite().await), TestDb::postgres().await].into_iter().flatten() {
        let outcome = std::panic::AssertUnwindSafe(scenario(&db)).catch_unwind().await;
        let name = db.name;
        db.cleanup().await;
        if let Err(p) = outcome {
            eprintln!("crash scenario failed on {name}");
            std::panic::resume_unwind(p);
        }
    }
}
