//! Automation across replicas and crashes (issue 14): a rule that runs every minute — a text
//! to a contractor and a signed call to a webhook endpoint — on real `dropcheck` servers
//! sharing one database (SQLite and PostgreSQL, side by side):
//! - minute 1: server A alone, SIGKILLed while the provider and the receiver are still
//!   answering the minute's send and webhook (the provider and receiver take 400 ms);
//! - minute 2: A restarted and a second server B sweep side by side (every second); B is
//!   SIGKILLed while minute 2's send or webhook is in flight;
//! - minute 3: A alone again.
//!
//! Every minute runs exactly once; the provider receives each minute's text once; the receiver
//! sees one `webhook-id` per minute (a delivery cut by a kill comes again with the same id),
//! and every request verifies with the `standardwebhooks` crate. The drift of each run (start
//! minus its instant) is printed; `docs/PERFORMANCE.md` records it with a 15 s sweep.

use super::{free_port, mock_list, wait_healthy, Sent, Server, SID, TOKEN};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;
use dropcheck_core::automation::RuleSpec;
use dropcheck_core::domain::Phone;
use dropcheck_core::store::Store;
use dropcheck_core::testing::TestDb;
use std::collections::{HashMap, HashSet};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const KEY_HEX: &str = "7f3c1a9e5b2d4c6f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7";
const CONTRACTOR: &str = "+27831234567";
/// How long the provider and the receiver take to answer: a kill lands inside that.
const SLOW: Duration = Duration::from_millis(400);

#[derive(Default)]
struct Mocks {
    sent: Sent,
    sends_in_flight: usize,
    /// Each webhook request: its id, whether it verified, its body.
    hooks: Vec<(String, bool, serde_json::Value)>,
    hooks_in_flight: usize,
    secret: String,
}

type Shared = Arc<Mutex<Mocks>>;

/// Counts a request as in flight until its handler ends — answered, or dropped when the
/// killed server's connection closes.
struct InFlight(Shared, fn(&mut Mocks) -> &mut usize);

impl InFlight {
    fn start(m: &Shared, field: fn(&mut Mocks) -> &mut usize) -> Self {
        *field(&mut m.lock().unwrap()) += 1;
        InFlight(m.clone(), field)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        *(self.1)(&mut self.0.lock().unwrap()) -= 1;
    }
}

async fn slow_send(State(m): State<Shared>, body: String) -> impl IntoResponse {
    let form: Vec<(String, String)> = form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    let get = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default();
    let n = {
        let mut m = m.lock().unwrap();
        // Accepted from here, as a provider accepts before its answer arrives.
        *m.sent.bodies.entry(get("Body")).or_default() += 1;
        let n = m.sent.log.len() + 1;
        m.sent.log.push((get("To"), get("Body"), format!("SM{n:032}")));
        n
    };
    let _busy = InFlight::start(&m, |m| &mut m.sends_in_flight);
    tokio::time::sleep(SLOW).await;
    (StatusCode::CREATED, format!(r#"{{"sid": "SM{n:032}", "status": "queued"}}"#))
}

async fn list(State(m): State<Shared>, q: axum::extract::Query<Vec<(String, String)>>) -> impl IntoResponse {
    let sent = Arc::new(Mutex::new(Sent { bodies: HashMap::new(), log: m.lock().unwrap().sent.log.clone() }));
    mock_list(State(sent), q).await
}

async fn hook(State(m): State<Shared>, headers: HeaderMap, body: Bytes) -> StatusCode {
    {
        let mut m = m.lock().unwrap();
        let verified = standardwebhooks::Webhook::new(&m.secret).unwrap().verify(&body, &headers).is_ok();
        let id = headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
        m.hooks.push((id, verified, json));
    }
    let _busy = InFlight::start(&m, |m| &mut m.hooks_in_flight);
    tokio::time::sleep(SLOW).await;
    StatusCode::OK
}

fn start(db_url: &str, data: &std::path::Path, port: u16, mock: &str) -> Server {
    Server(
        Command::new(env!("CARGO_BIN_EXE_dropcheck"))
            .arg("serve")
            .env("DATABASE_URL", db_url)
            .env("DROPCHECK_DATA_DIR", data)
            .env("DROPCHECK_PUBLIC_URL", "https://dropcheck.example")
            .env("DROPCHECK_SECRET_KEY", KEY_HEX)
            .env("DROPCHECK_PROVIDER", "twilio")
            .env("TWILIO_ACCOUNT_SID", SID)
            .env("TWILIO_AUTH_TOKEN", TOKEN)
            .env("TWILIO_WHATSAPP_NUMBER", "+14155238886")
            .env("TWILIO_API_BASE", mock)
            .env("DROPCHECK_RETRY_BASE_SECONDS", "0")
            .env("DROPCHECK_WORKER_LEASE_SECONDS", "3")
            .env("DROPCHECK_AUTOMATION_SWEEP_SECONDS", "1")
            .env("DROPCHECK_WEBHOOK_ALLOW_PRIVATE", "true")
            .env("LEPTOS_SITE_ADDR", format!("127.0.0.1:{port}"))
            .env("LEPTOS_SITE_ROOT", data)
            .env("LEPTOS_OUTPUT_NAME", "dropcheck")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the dropcheck binary starts"),
    )
}

async fn runs(store: &Store, rule: i64) -> Vec<dropcheck_core::store::RunRow> {
    store.automation_runs(rule, None, 100).await.unwrap()
}

/// Waits (up to `limit`) until `done` holds, checking every 5 ms.
async fn until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    false
}

/// Waits until the rule has `n` runs (the minute after the last one, plus the sweep's second).
async fn until_runs(store: &Store, rule: i64, n: usize) {
    let t0 = Instant::now();
    while runs(store, rule).await.len() < n {
        assert!(t0.elapsed() < Duration::from_secs(75), "run {n} did not start within 75 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn scenario(db: &TestDb) {
    let store: &Store = &db.store;
    let key: Vec<u8> = (0..32).map(|i| u8::from_str_radix(&KEY_HEX[2 * i..2 * i + 2], 16).unwrap()).collect();
    store.set_secret_key(key.try_into().unwrap());
    let mocks: Shared = Arc::default();
    let app = Router::new()
        .route("/2010-04-01/Accounts/{sid}/Messages.json", post(slow_send).get(list))
        .route("/hook", post(hook))
        .with_state(mocks.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mock = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    // The contractor wrote today (free texts go); an endpoint; the rule.
    let phone = Phone::parse(CONTRACTOR).unwrap();
    store.upsert_contact(&phone, "Thabo").await.unwrap();
    store.note_inbound(&phone, dropcheck_core::now_ms()).await.unwrap();
    let (ep, secret) = store.create_webhook_endpoint(&format!("{mock}/hook"), &["message.failed".to_string()], true).await.unwrap();
    mocks.lock().unwrap().secret = secret;
    let spec = RuleSpec::parse(&serde_json::json!({
        "name": "Every minute",
        "trigger": {"type": "schedule.cron", "cron": "* * * * *", "time_zone": "Africa/Johannesburg"},
        "actions": [{"type": "send_text", "to": CONTRACTOR, "text": "tick {{ scheduled_for }}"}, {"type": "call_webhook", "endpoint": ep.id}]
    }))
    .unwrap();
    let rule = store.create_rule(&spec).await.unwrap().id;

    let client = reqwest::Client::new();
    let (data_a, data_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (port_a, port_b) = (free_port(), free_port());
    let (base_a, base_b) = (format!("http://127.0.0.1:{port_a}"), format!("http://127.0.0.1:{port_b}"));
    let in_flight = |m: &Shared| {
        let m = m.lock().unwrap();
        (m.sends_in_flight, m.hooks_in_flight)
    };

    // Minute 1: A alone, killed while the minute's send and call are being answered.
    let mut a = start(&db.url, data_a.path(), port_a, &mock);
    wait_healthy(&client, &base_a).await;
    until_runs(store, rule, 1).await;
    // The kill falls while the minute's send and call are being answered: both if they
    // overlap (the sweep wakes both senders at once), else the first of them.
    let both = until(Duration::from_secs(2), || in_flight(&mocks) == (1, 1)).await;
    if !both {
        until(Duration::from_secs(5), || in_flight(&mocks) != (0, 0)).await;
    }
    let cut_1 = in_flight(&mocks);
    a.0.kill().expect("SIGKILL");
    a.0.wait().unwrap();
    if cut_1.0 + cut_1.1 == 0 {
        let so_far = runs(store, rule).await;
        let m = mocks.lock().unwrap();
        panic!(
            "{}: the kill did not fall while minute 1's effects were in flight; runs: {:?}; sends: {:?}; webhooks: {:?}",
            db.name,
            so_far.iter().map(|r| (&r.status, &r.actions)).collect::<Vec<_>>(),
            m.sent.log,
            m.hooks.iter().map(|(id, ok, _)| (id, ok)).collect::<Vec<_>>()
        );
    }

    // Minute 2: A again and B side by side; B killed while the minute's effects are in flight.
    let a = start(&db.url, data_a.path(), port_a, &mock);
    let mut b = start(&db.url, data_b.path(), port_b, &mock);
    wait_healthy(&client, &base_a).await;
    wait_healthy(&client, &base_b).await;
    until_runs(store, rule, 2).await;
    until(Duration::from_secs(5), || in_flight(&mocks) != (0, 0)).await;
    let cut_2 = in_flight(&mocks);
    b.0.kill().expect("SIGKILL");
    b.0.wait().unwrap();

    // Minute 3: A alone; then everything settles.
    until_runs(store, rule, 3).await;
    let settled: Result<(), String> = {
        let t0 = Instant::now();
        loop {
            let c = store.outbox_counts().await.unwrap();
            let m = mocks.lock().unwrap();
            let ids: HashSet<&str> = m.hooks.iter().map(|(id, _, _)| id.as_str()).collect();
            if c.queued + c.sending == 0 && ids.len() >= 3 && m.hooks_in_flight == 0 && m.sends_in_flight == 0 {
                break Ok(());
            }
            if t0.elapsed() > Duration::from_secs(30) {
                break Err(format!(
                    "outbox {c:?}; webhook ids {ids:?}; in flight ({}, {}); sends {:?}",
                    m.sends_in_flight, m.hooks_in_flight, m.sent.log
                ));
            }
            drop(m);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    drop(a);
    if let Err(state) = settled {
        panic!("{}: sends and deliveries did not settle: {state}", db.name);
    }

    // Exactly once per minute, on consecutive minutes.
    let mut runs = runs(store, rule).await;
    runs.sort_by_key(|r| r.started_at);
    let instants: Vec<i64> = runs
        .iter()
        .map(|r| {
            let at = r.context["scheduled_for"].as_str().unwrap();
            let t = time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).unwrap();
            (t.unix_timestamp_nanos() / 1_000_000) as i64
        })
        .collect();
    assert!(instants.len() >= 3, "{}: {} runs", db.name, instants.len());
    for w in instants.windows(2) {
        assert_eq!(w[1] - w[0], 60_000, "{}: each minute once, none skipped: {instants:?}", db.name);
    }
    let drift: Vec<i64> = runs.iter().zip(&instants).map(|(r, at)| r.started_at - at).collect();

    // The provider got each minute's text once; nothing else.
    let m = mocks.lock().unwrap();
    let texts: Vec<(&String, &usize)> = m.sent.bodies.iter().collect();
    assert_eq!(texts.len(), runs.len(), "{}: one text per run: {texts:?}", db.name);
    assert!(texts.iter().all(|(_, n)| **n == 1), "{}: no text twice: {texts:?}", db.name);
    // The receiver: one webhook-id per run, each verified; a repeat only with the same id and body.
    assert!(m.hooks.iter().all(|(_, ok, _)| *ok), "{}: every delivery verifies", db.name);
    let mut by_id: HashMap<&str, Vec<&serde_json::Value>> = HashMap::new();
    for (id, _, body) in &m.hooks {
        by_id.entry(id.as_str()).or_default().push(body);
    }
    assert_eq!(by_id.len(), runs.len(), "{}: one webhook-id per minute: {:?}", db.name, by_id.keys());
    for (id, bodies) in &by_id {
        assert!(bodies.iter().all(|b| *b == bodies[0]), "{}: {id} repeated with another body", db.name);
    }
    let minutes: HashSet<&str> = by_id.values().map(|b| b[0]["data"]["scheduled_for"].as_str().unwrap()).collect();
    assert_eq!(minutes.len(), runs.len(), "{}: each minute's call is its own", db.name);
    let repeats = m.hooks.len() - by_id.len();
    eprintln!(
        "{}: {} minutes, once each; in flight at the kills (sends, webhooks): {cut_1:?} (both awaited: {both}), {cut_2:?}; \
         webhook repeats with the same id: {repeats}; drift (ms): {drift:?}",
        db.name,
        runs.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rule_every_minute_fires_once_per_minute_across_two_servers_and_sigkills() {
    use futures_util::FutureExt;
    let sqlite = TestDb::sqlite().await;
    let pg = TestDb::postgres().await;
    let run = |db: Option<TestDb>| async move {
        let Some(db) = db else { return Ok(()) };
        let outcome = std::panic::AssertUnwindSafe(scenario(&db)).catch_unwind().await;
        let name = db.name;
        db.cleanup().await;
        outcome.map_err(|p| (name, p))
    };
    // Both backends at once: each takes three minutes of the clock.
    let (s, p) = tokio::join!(run(Some(sqlite)), run(pg));
    for r in [s, p] {
        if let Err((name, p)) = r {
            eprintln!("the every-minute scenario failed on {name}");
            std::panic::resume_unwind(p);
        }
    }
}
