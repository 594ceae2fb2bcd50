//! Nothing is lost and nothing repeats across crashes: the real `dropcheck` binary is killed
//! with SIGKILL (on SQLite and on PostgreSQL):
//! - once in the middle of a burst of 1 000 inbound webhooks and 1 000 queued sends, then
//!   restarted on the same database: every webhook it answered 200 is processed and every
//!   queued message reaches the (mock) provider;
//! - ten times at random moments while 30 contractors send a drop number, eleven photos and
//!   `/status` each, batches download and commit, and replies go out: every event is
//!   processed once, every photo filed once, every reply queued once, and the provider gets
//!   nothing twice (a send interrupted by a kill is looked up in the provider's list first).

#[path = "crash/automation.rs"]
mod automation;
#[path = "crash/backup.rs"]
mod backup;

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
    let f = dropcheck_core::outbox::MessageFilter { direction: Some(dropcheck_core::domain::Direction::In), ..Default::default() };
    let (inbound, _) = store.list_messages(&f, None, 200).await.unwrap();
    assert!(!inbound.is_empty());
    let dupes: usize = {
        let s = sent.lock().unwrap();
        (0..SENDS).map(|i| s.bodies[&format!("send {i}")] - 1).sum()
    };
    // A message in flight at the kill (the provider may have accepted it before its id was
    // recorded) is looked up in the provider's list before it is sent again: none goes twice.
    assert_eq!(dupes, 0, "duplicate sends");
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

/// Contractors in the ten-kill scenario, and what each sends: a drop number, eleven photos,
/// then `/status`.
const CONTRACTORS: usize = 30;
const PHOTOS: usize = 11;
const KILLS: usize = 10;

fn contractor(c: usize) -> String {
    format!("+2765{:07}", 2_000_000 + c)
}

fn drop_of(c: usize) -> String {
    format!("DR3{:07}", c)
}

/// Webhook `k` of contractor `c`, as Twilio sends it.
fn contractor_webhook(c: usize, k: usize, media: &str) -> Vec<(String, String)> {
    let mut p = vec![("MessageSid".to_string(), format!("SMkill{c:03}{k:02}")), ("From".into(), format!("whatsapp:{}", contractor(c)))];
    match k {
        0 => p.extend([("Body".into(), drop_of(c)), ("NumMedia".into(), "0".into())]),
        k if k <= PHOTOS => p.extend([
            ("Body".into(), String::new()),
            ("NumMedia".into(), "1".into()),
            ("MediaUrl0".into(), format!("{media}/media/{}", c * 100 + k)),
            ("MediaContentType0".into(), "image/jpeg".into()),
        ]),
        _ => p.extend([("Body".into(), "/status".into()), ("NumMedia".into(), "0".into())]),
    }
    p
}

/// Every message in one direction (the list is read a page at a time).
async fn all_messages(store: &Store, direction: &str) -> Vec<dropcheck_core::store::MessageRow> {
    let f = dropcheck_core::outbox::MessageFilter {
        direction: Some(dropcheck_core::domain::Direction::parse(direction).unwrap()),
        ..Default::default()
    };
    let (mut all, mut cursor) = (vec![], None);
    loop {
        let (page, next) = store.list_messages(&f, cursor, 200).await.unwrap();
        all.extend(page);
        match next {
            Some(c) => cursor = Some(c),
            None => return all,
        }
    }
}

/// The server process, killed when the test ends however it ends (a failed assertion must not
/// leave it running, holding the test's output open).
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn mock_media(
    State(photos): State<Arc<HashMap<usize, Vec<u8>>>>,
    axum::extract::Path(n): axum::extract::Path<usize>,
) -> impl IntoResponse {
    // A download takes a moment, so kills fall between a batch's downloads and its commit too.
    tokio::time::sleep(Duration::from_millis(15)).await;
    match photos.get(&n) {
        Some(jpeg) => ([(axum::http::header::CONTENT_TYPE, "image/jpeg")], jpeg.clone()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Ten SIGKILLs at random moments while contractors' messages and photos arrive and are
/// processed and replies are sent; then one last start. Every event is processed once, every
/// photo filed once, every reply queued once, and nothing reaches the provider twice.
async fn ten_kills(db: &TestDb, seed: u64) {
    let store: &Store = &db.store;
    store.create_project("Velo Test", DEFAULT_DROP_PATTERN).await.unwrap();
    let sent: Arc<Mutex<Sent>> = Arc::default();
    let photos: Arc<HashMap<usize, Vec<u8>>> = Arc::new(
        (0..CONTRACTORS)
            .flat_map(|c| (1..=PHOTOS).map(move |k| (c, k)))
            .map(|(c, k)| (c * 100 + k, dropcheck_core::media::demo_photo(&drop_of(c), k as i64, "kill test", (c * 100 + k) as u32)))
            .collect(),
    );
    let provider = Router::new().route("/2010-04-01/Accounts/{sid}/Messages.json", post(mock_send).get(mock_list)).with_state(sent.clone());
    let media = Router::new().route("/media/{n}", axum::routing::get(mock_media)).with_state(photos);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mock = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, provider.merge(media)).await.unwrap() });

    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut server = Server(start_server(&db.url, data.path(), port, &mock));
    wait_healthy(&client, &base).await;

    // Each contractor's phone sends its messages in order, each again until it is accepted
    // (as a provider redelivers what was not answered 200).
    let phones: Vec<_> = (0..CONTRACTORS)
        .map(|c| {
            let (client, base, mock) = (client.clone(), base.clone(), mock.clone());
            tokio::spawn(async move {
                for k in 0..=PHOTOS + 1 {
                    let params = contractor_webhook(c, k, &mock);
                    let sig = twilio_signature(TOKEN, &format!("{PUBLIC}/webhooks/twilio"), &params);
                    loop {
                        let r = client
                            .post(format!("{base}/webhooks/twilio"))
                            .header("X-Twilio-Signature", &sig)
                            .form(&params)
                            .timeout(Duration::from_secs(10))
                            .send()
                            .await;
                        if r.is_ok_and(|r| r.status() == StatusCode::OK) {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    // A person sends a photo at a time.
                    tokio::time::sleep(Duration::from_millis(150)).await;
                }
            })
        })
        .collect();

    // Kill at random moments: 100–1 500 ms after each start (a small LCG; the seed is printed),
    // while messages arrive, batches download and commit, and replies are sent.
    let mut rng = seed;
    let mut at_kill = vec![];
    for k in 0..KILLS {
        rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let after = 100 + (rng >> 33) % 1400;
        tokio::time::sleep(Duration::from_millis(after)).await;
        if k == 0 {
            // The inbox may keep up with the contractors so well that a random moment rarely
            // finds anything queued: this kill waits for the first moment something is.
            let waiting_since = std::time::Instant::now();
            while store.event_counts().await.unwrap().0 == 0 && waiting_since.elapsed() < Duration::from_secs(10) {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        server.0.kill().expect("SIGKILL");
        server.0.wait().unwrap();
        let (pending, done, _) = store.event_counts().await.unwrap();
        at_kill.push((after, pending, done, sent.lock().unwrap().log.len()));
        server = Server(start_server(&db.url, data.path(), port, &mock));
        wait_healthy(&client, &base).await;
    }
    for p in phones {
        p.await.unwrap();
    }
    eprintln!("seed {seed}; at each kill (ms after start, events pending, events done, sends): {at_kill:?}");
    assert!(at_kill.iter().any(|(_, pending, _, _)| *pending > 0), "some kill fell while events were waiting to be processed");

    // Everything settles (claims of the killed processes lapse after 3 s).
    let total = (CONTRACTORS * (PHOTOS + 2)) as i64;
    let t0 = Instant::now();
    loop {
        let (pending, done, failed) = store.event_counts().await.unwrap();
        let c = store.outbox_counts().await.unwrap();
        if pending == 0 && done + failed == total && c.queued + c.sending == 0 {
            assert_eq!((done, failed), (total, 0), "every event processed once, none failed");
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(120), "not settled: {pending} events pending, outbox {c:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Every photo filed once, on its contractor's drop.
    let mut shas = HashSet::new();
    for c in 0..CONTRACTORS {
        let d = store.drop_detail(&dropcheck_core::domain::DropNumber::parse(&drop_of(c)).unwrap()).await.unwrap();
        let filed: Vec<_> = d.steps.iter().flat_map(|s| &s.photos).collect();
        assert_eq!(filed.len(), PHOTOS, "{}: {} photos", drop_of(c), filed.len());
        for p in filed {
            assert!(shas.insert(p.sha256.clone()), "photo {} filed twice", p.sha256);
        }
    }
    // Every inbound message recorded once.
    assert_eq!(all_messages(store, "in").await.len() as i64, total);
    // Every reply queued once: one "drop opened" and one status reply per contractor, and at
    // least one photo acknowledgment (a burst cut by a kill may be acknowledged in parts).
    let out = all_messages(store, "out").await;
    for c in 0..CONTRACTORS {
        let to = contractor(c);
        let count = |t: &str| out.iter().filter(|m| m.phone == to.as_str() && m.template.as_deref() == Some(t)).count();
        assert_eq!((count("drop_opened"), count("status")), (1, 1), "{to}");
        assert!(count("photo_ack") >= 1, "{to}");
    }
    // Nothing reached the provider twice: every send the mock accepted is one recorded message.
    let recorded: HashSet<String> = out.iter().filter_map(|m| m.provider_message_id.clone()).collect();
    assert!(out.iter().all(|m| m.status == "sent"), "every reply sent: {:?}", out.iter().map(|m| &m.status).collect::<Vec<_>>());
    let s = sent.lock().unwrap();
    let unrecorded: Vec<_> = s.log.iter().filter(|(_, _, sid)| !recorded.contains(sid)).collect();
    assert_eq!(s.log.len(), out.len(), "the provider got each reply once; sends not recorded: {unrecorded:?}");
    assert!(unrecorded.is_empty());
    eprintln!("{} events, {} photos, {} replies, 0 duplicates across {KILLS} kills", total, shas.len(), out.len());
    drop(s);
    drop(server);
}

#[tokio::test]
async fn ten_sigkills_during_processing_lose_nothing_and_repeat_nothing() {
    use futures_util::FutureExt;
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    for db in [Some(TestDb::sqlite().await), TestDb::postgres().await].into_iter().flatten() {
        let outcome = std::panic::AssertUnwindSafe(ten_kills(&db, seed)).catch_unwind().await;
        let name = db.name;
        db.cleanup().await;
        if let Err(p) = outcome {
            eprintln!("ten-kill scenario failed on {name} (seed {seed})");
            std::panic::resume_unwind(p);
        }
    }
}
