//! Messaging throughput on this machine (docs/PERFORMANCE.md):
//!
//! 1. webhook ingest: N signed Twilio webhooks posted by C concurrent clients; each answer
//!    comes only after the request and its event are committed (persist-before-ack), so
//!    the latency is the cost of that commit;
//! 2. inbound processing: how fast the inbox worker turns those events into stored messages
//!    and conversation effects, end to end (first webhook to last event applied): text only,
//!    then with one message in four carrying a photo downloaded from a local mock and
//!    thumbnailed;
//! 3. outbound dispatch: N queued messages sent to a local mock of Twilio's API.
//!
//! Run: `cargo run --release -p dropcheck --example bench_messaging -- [N] [C]`
//! (defaults 2000 and 16). With `DATABASE_URL=postgres://…` (an empty database) it measures
//! PostgreSQL; otherwise a temporary SQLite file with `synchronous=FULL`.

use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use dropcheck::config::{ProviderConfig, RetryPolicy};
use dropcheck::{Application, Config};
use dropcheck_core::domain::{Phone, DEFAULT_DROP_PATTERN};
use dropcheck_core::providers::twilio_signature;
use dropcheck_core::store::Store;
use leptos::prelude::LeptosOptions;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TOKEN: &str = "bench-auth-token";
const SID: &str = "AC00000000000000000000000000000009";
const PUBLIC: &str = "https://dropcheck.example";

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(2000);
    let c: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(16);

    // A local Twilio: accepts every message.
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    let mock = Router::new().route(
        "/2010-04-01/Accounts/{sid}/Messages.json",
        post(move || {
            let counter = counter.clone();
            async move {
                let k = counter.fetch_add(1, Ordering::Relaxed);
                (StatusCode::CREATED, format!(r#"{{"sid": "SM{k:032}", "status": "queued"}}"#))
            }
        }),
    );
    // Photos for the mixed run: 64 distinct JPEGs (a drop's 12 steps each get a new one).
    let photos: Arc<Vec<Vec<u8>>> =
        Arc::new((0..64).map(|k| dropcheck_core::media::demo_photo("DR10000000", k % 12 + 1, "bench", k as u32)).collect());
    let mock = mock.route(
        "/media/{n}",
        axum::routing::get(move |axum::extract::Path(n): axum::extract::Path<usize>| {
            let photos = photos.clone();
            async move { ([("content-type", "image/jpeg")], photos[n % photos.len()].clone()) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mock_base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, mock).await.unwrap() });

    let data = tempfile::tempdir().unwrap();
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| format!("sqlite://{}", data.path().join("bench.db").display()));
    let store = Store::connect(&url).await.expect("database");
    store.migrate().await.expect("migrations");
    store.create_project("Velo Test", DEFAULT_DROP_PATTERN).await.ok();
    let config = Config {
        data_dir: data.path().to_path_buf(),
        database_url: Some(url.clone()),
        public_url: PUBLIC.into(),
        bridge_api_key: None,
        site_addr: "127.0.0.1:0".parse().unwrap(),
        provider_env: ProviderConfig::Twilio {
            account_sid: SID.into(),
            auth_token: TOKEN.into(),
            from: "whatsapp:+14155238886".into(),
            api_base: mock_base.clone(),
        }
        .as_env(),
        sandbox_token: "sandbox-unused".into(),
        retry: RetryPolicy { base_ms: 100, cap_ms: 1000, horizon_ms: 86_400_000 },
        send_rate: 10_000,
        max_media_bytes: 16 << 20,
        ..Config::for_tests()
    };
    let opts = LeptosOptions::builder().output_name("dropcheck").site_root("target/site").build();
    let app = Application::build_with_store(config, opts, store.clone()).await.unwrap();
    let base = format!("http://{}", app.local_addr());
    tokio::spawn(app.run_until_stopped());
    println!("backend: {}; {n} webhooks from {c} concurrent clients; {n} outbound messages", store.backend());

    // 0: the ceiling: the same requests from the same clients to a bare axum handler that
    // only answers 200, in this process.
    let bare = Router::new().route("/webhooks/twilio", post(|| async { "<Response></Response>" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bare_base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, bare).await.unwrap() });
    let client = reqwest::Client::new();
    let (elapsed, lat) = post_webhooks(&client, &bare_base, "SMbare", n, c, None, 0).await;
    report("ceiling: bare axum handler", n, elapsed, &lat);

    // 1 + 2: ingest, then processing. 200 contractors, so ordering per number matters; each
    // first opens a drop, then sends texts (and, in the mixed run, photos for it).
    for (label, prefix, photo_every) in [("text only", "SMtext", 0usize), ("one photo in four", "SMmix", 4)] {
        let t0 = Instant::now();
        let media = (photo_every > 0).then_some(mock_base.as_str());
        let (elapsed, lat) = post_webhooks(&client, &base, prefix, n, c, media, photo_every).await;
        report(&format!("webhook ingest, {label} (answered after the commit)"), n, elapsed, &lat);
        let ingested = t0.elapsed();
        loop {
            let (pending, _, _) = store.event_counts().await.unwrap();
            if pending == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let all = t0.elapsed();
        println!(
            "inbound processing, {label}: all {n} events applied {:.2} s after the first webhook ({:.0} events/s end to end), \
             {:.2} s after the last was acknowledged",
            all.as_secs_f64(),
            n as f64 / all.as_secs_f64(),
            (all - ingested).as_secs_f64()
        );
    }
    let (_, done, failed) = store.event_counts().await.unwrap();
    println!("events: {done} done, {failed} failed");

    // 3: dispatch. Let the hint replies drain, then queue N messages due a little later
    // (queueing is not what is measured) and time their sending from when they come due.
    while accepted.load(Ordering::Relaxed) < store.outbox_counts().await.unwrap().sent as usize {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = accepted.load(Ordering::Relaxed);
    let due = dropcheck_core::now_ms() + 3_000 + n as i64;
    for i in 0..n {
        let p = Phone::parse(&format!("+2764{:07}", 1_000_000 + i % 200)).unwrap();
        store.queue_message(&p, &format!("notice {i}"), None, due).await.unwrap();
    }
    let wait = due - dropcheck_core::now_ms();
    assert!(wait > 0, "queueing took longer than planned");
    tokio::time::sleep(Duration::from_millis(wait as u64)).await;
    let t1 = Instant::now();
    while accepted.load(Ordering::Relaxed) < before + n {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let d = t1.elapsed();
    println!(
        "outbound dispatch: {n} messages accepted by the mock provider in {:.2} s ({:.0} messages/s)",
        d.as_secs_f64(),
        n as f64 / d.as_secs_f64()
    );

    // The dispatch ceiling: the same client posting the same forms straight to the mock,
    // 16 at a time, with no database.
    let mock_url = format!("{mock_base}/2010-04-01/Accounts/{SID}/Messages.json");
    let next = Arc::new(AtomicUsize::new(0));
    let t2 = Instant::now();
    let mut tasks = vec![];
    for _ in 0..16 {
        let (client, url, next) = (client.clone(), mock_url.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < n {
                let form = [("To", "whatsapp:+27641000000"), ("From", "whatsapp:+14155238886"), ("Body", "notice")];
                let r = client.post(&url).basic_auth(SID, Some(TOKEN)).form(&form).send().await.unwrap();
                assert_eq!(r.status(), StatusCode::CREATED);
                r.bytes().await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let d = t2.elapsed();
    println!("ceiling: {n} posts straight to the mock, 16 at a time: {:.0} messages/s", n as f64 / d.as_secs_f64());
}

/// Posts `n` signed Twilio webhooks from `c` concurrent clients (from 200 numbers: each
/// number's first message names its drop; with `media`, every `photo_every`-th message is a
/// photo at `{media}/media/{i}`); returns the time and latencies.
async fn post_webhooks(
    client: &reqwest::Client,
    base: &str,
    prefix: &str,
    n: usize,
    c: usize,
    media: Option<&str>,
    photo_every: usize,
) -> (Duration, Vec<Duration>) {
    let next = Arc::new(AtomicUsize::new(0));
    let t0 = Instant::now();
    let mut tasks = vec![];
    for _ in 0..c {
        let (client, base, next, prefix) = (client.clone(), base.to_string(), next.clone(), prefix.to_string());
        let media = media.map(str::to_string);
        tasks.push(tokio::spawn(async move {
            let mut lat = vec![];
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return lat;
                }
                let number = 1_000_000 + i % 200;
                let mut params: Vec<(String, String)> =
                    vec![("MessageSid".into(), format!("{prefix}{i:08}")), ("From".into(), format!("whatsapp:+2764{number:07}"))];
                match &media {
                    Some(m) if i >= 200 && i % photo_every == 0 => {
                        params.push(("Body".into(), String::new()));
                        params.push(("NumMedia".into(), "1".into()));
                        params.push(("MediaUrl0".into(), format!("{m}/media/{i}")));
                        params.push(("MediaContentType0".into(), "image/jpeg".into()));
                    }
                    _ => {
                        let body = if i < 200 { format!("DR1{number:07}") } else { format!("hello {i}") };
                        params.push(("Body".into(), body));
                        params.push(("NumMedia".into(), "0".into()));
                    }
                }
                let sig = twilio_signature(TOKEN, &format!("{PUBLIC}/webhooks/twilio"), &params);
                let s = Instant::now();
                let r =
                    client.post(format!("{base}/webhooks/twilio")).header("X-Twilio-Signature", sig).form(&params).send().await.unwrap();
                assert_eq!(r.status(), StatusCode::OK);
                r.bytes().await.unwrap();
                lat.push(s.elapsed());
            }
        }));
    }
    let mut lat: Vec<Duration> = vec![];
    for t in tasks {
        lat.extend(t.await.unwrap());
    }
    let elapsed = t0.elapsed();
    lat.sort();
    (elapsed, lat)
}

fn report(what: &str, n: usize, elapsed: Duration, lat: &[Duration]) {
    println!(
        "{what}: {:.0} requests/s; latency p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms",
        n as f64 / elapsed.as_secs_f64(),
        pct(lat, 0.5),
        pct(lat, 0.9),
        pct(lat, 0.99)
    );
}
