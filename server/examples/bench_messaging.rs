//! Messaging throughput on this machine (docs/PERFORMANCE.md):
//!
//! 1. the inbox alone: N webhooks acknowledged while the workers are stopped, then the
//!    workers started and timed until every event is applied;
//! 2. webhook ingest: N signed Twilio webhooks posted by C concurrent clients; each answer
//!    comes only after the request and its event are committed (persist-before-ack), so
//!    the latency is the cost of that commit;
//! 3. inbound processing at the same time: how fast the inbox worker turns those events into
//!    stored messages and conversation effects, end to end (first webhook to last event
//!    applied): text only, then with one message in four carrying a photo downloaded from a
//!    local mock and thumbnailed;
//! 4. outbound dispatch: N queued messages sent to a local mock of Twilio's API.
//!
//! Run: `cargo run --release -p dropcheck --example bench_messaging -- [N] [C]`
//! (defaults 2000 and 16). With `DATABASE_URL=postgres://…` (an empty database) it measures
//! PostgreSQL; otherwise a temporary SQLite file with `synchronous=FULL`. With
//! `BENCH_LOG=sqlx::query=debug` every statement is logged to stderr with its time (to count
//! statements per event; the logging itself slows the run).

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
    if let Ok(filter) = std::env::var("BENCH_LOG") {
        tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::new(filter)).with_writer(std::io::stderr).init();
    }
    // `sustained RATE SECONDS` / `overload RATE SECONDS`: webhooks at a fixed rate instead.
    let load: Option<(String, f64, u64)> = match args.get(1).map(String::as_str) {
        Some(mode @ ("sustained" | "overload")) => Some((
            mode.to_string(),
            args.get(2).and_then(|a| a.parse().ok()).expect("a rate (webhooks per second)"),
            args.get(3).and_then(|a| a.parse().ok()).expect("a duration (seconds)"),
        )),
        _ => None,
    };
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
        // Started below, once the backlog phase has queued its events.
        background_workers: false,
        ..Config::for_tests()
    };
    let opts = LeptosOptions::builder().output_name("dropcheck").site_root("target/site").build();
    let app = Application::build_with_store(config, opts, store.clone()).await.unwrap();
    let base = format!("http://{}", app.local_addr());
    let workers = app.workers();
    tokio::spawn(app.run_until_stopped());
    if let Some((mode, rate, secs)) = load {
        let _running = workers.spawn();
        return fixed_rate(&store, &base, &mode, rate, secs).await;
    }
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

    // 1: processing alone: N text webhooks acknowledged while the workers are stopped, then
    // the workers started and timed until every event is applied (the inbox's own rate, with
    // nothing else on the two cores but the sender sending its replies).
    let (elapsed, lat) = post_webhooks(&client, &base, "SMbacklog", n, c, None, 0).await;
    report("webhook ingest, text only, workers stopped", n, elapsed, &lat);
    let t0 = Instant::now();
    let _running = workers.spawn();
    wait_until_applied(&store).await;
    let d = t0.elapsed();
    println!(
        "inbound processing alone, text only: {n} queued events applied in {:.2} s ({:.0} events/s)",
        d.as_secs_f64(),
        n as f64 / d.as_secs_f64()
    );

    // 2 + 3: ingest and processing at once. 200 contractors, so ordering per number matters;
    // each first opens a drop, then sends texts (and, in the mixed run, photos for it).
    for (label, prefix, photo_every) in [("text only", "SMtext", 0usize), ("one photo in four", "SMmix", 4)] {
        let t0 = Instant::now();
        let media = (photo_every > 0).then_some(mock_base.as_str());
        let (elapsed, lat) = post_webhooks(&client, &base, prefix, n, c, media, photo_every).await;
        report(&format!("webhook ingest, {label} (answered after the commit)"), n, elapsed, &lat);
        let ingested = t0.elapsed();
        wait_until_applied(&store).await;
        let all = t0.elapsed();
        // What a reviewer waits for: from a webhook's acceptance to its effect being stored
        // (the drop page shows it at its next live update, within a second).
        let mut waits: Vec<Duration> = store
            .recent_events(n as i64)
            .await
            .unwrap()
            .iter()
            .filter_map(|e| Some(Duration::from_millis((e.processed_at? - e.received_at).max(0) as u64)))
            .collect();
        waits.sort();
        println!(
            "accepted → applied, {label}: p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
            pct(&waits, 0.5),
            pct(&waits, 0.9),
            pct(&waits, 0.99),
            pct(&waits, 1.0)
        );
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

/// Returns when no inbound event is pending.
async fn wait_until_applied(store: &Store) {
    while store.events_open().await.unwrap() > 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
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

/// This process's resident memory (kB), from /proc.
fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

/// Webhooks at `rate` per second for `secs` seconds, open loop (a request leaves on time
/// whether or not earlier ones were answered; at most 2 048 in flight), text only from 200
/// numbers. Every second: the inbox backlog, the age of its oldest event, the process's
/// memory. Then: how long the backlog took to empty, how many were answered 200 and 503 (with
/// `Retry-After`, and how fast), and whether every 200 was a committed event.
async fn fixed_rate(store: &Store, base: &str, mode: &str, rate: f64, secs: u64) {
    use std::sync::Mutex;
    println!("backend: {}; {mode}: {rate:.0} webhooks/s for {secs} s", store.backend());
    let client = reqwest::Client::builder().pool_max_idle_per_host(2048).build().unwrap();
    let inflight = Arc::new(tokio::sync::Semaphore::new(2048));
    let ok_sids: Arc<Mutex<Vec<String>>> = Arc::default();
    let (busy, busy_without_retry_after, other) =
        (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let lat_ok: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let lat_busy: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // The sampler: backlog, its age, memory.
    let samples: Arc<Mutex<Vec<(f64, i64, f64, u64)>>> = Arc::default();
    let sampler = {
        let (store, samples, stop) = (store.clone(), samples.clone(), stop.clone());
        tokio::spawn(async move {
            let t0 = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let pending = store.events_open().await.unwrap();
                let age = match store.oldest_pending_event_at().await.unwrap() {
                    Some(at) => (dropcheck_core::now_ms() - at) as f64 / 1000.0,
                    None => 0.0,
                };
                samples.lock().unwrap().push((t0.elapsed().as_secs_f64(), pending, age, rss_kb()));
            }
        })
    };
    // Every request signed before the clock starts: the generator only sends.
    let total = (rate * secs as f64) as usize;
    let signed: Vec<(String, Vec<(String, String)>, String)> = (0..total)
        .map(|i| {
            let number = 1_000_000 + i % 200;
            let sid = format!("SM{mode}{i:09}");
            let body = if i < 200 { format!("DR1{number:07}") } else { format!("hello {i}") };
            let params: Vec<(String, String)> = vec![
                ("MessageSid".into(), sid.clone()),
                ("From".into(), format!("whatsapp:+2764{number:07}")),
                ("Body".into(), body),
                ("NumMedia".into(), "0".into()),
            ];
            let sig = twilio_signature(TOKEN, &format!("{PUBLIC}/webhooks/twilio"), &params);
            (sid, params, sig)
        })
        .collect();
    let url = format!("{base}/webhooks/twilio");
    let rss_before = rss_kb();
    let t0 = Instant::now();
    // The generator runs as a task of the runtime, like the requests it starts.
    let generator = {
        let (client, inflight, ok_sids, busy, busy_without_retry_after, other, lat_ok, lat_busy) = (
            client.clone(),
            inflight.clone(),
            ok_sids.clone(),
            busy.clone(),
            busy_without_retry_after.clone(),
            other.clone(),
            lat_ok.clone(),
            lat_busy.clone(),
        );
        tokio::spawn(async move {
            for (i, (sid, params, sig)) in signed.into_iter().enumerate() {
                let due = t0 + Duration::from_secs_f64(i as f64 / rate);
                tokio::time::sleep_until(due.into()).await;
                let permit = inflight.clone().acquire_owned().await.unwrap();
                let (client, url) = (client.clone(), url.clone());
                let (ok_sids, busy, no_ra, other, lat_ok, lat_busy) =
                    (ok_sids.clone(), busy.clone(), busy_without_retry_after.clone(), other.clone(), lat_ok.clone(), lat_busy.clone());
                // Not joined one by one: a finished task's memory is freed only when its
                // handle goes, and 100 000 kept handles would be the largest thing measured.
                tokio::spawn(async move {
                    let s = Instant::now();
                    let r = client.post(url).header("X-Twilio-Signature", sig).form(&params).send().await;
                    match r {
                        Ok(r) if r.status() == StatusCode::OK => {
                            r.bytes().await.ok();
                            lat_ok.lock().unwrap().push(s.elapsed());
                            ok_sids.lock().unwrap().push(sid);
                        }
                        Ok(r) if r.status() == StatusCode::SERVICE_UNAVAILABLE => {
                            if !r.headers().contains_key("retry-after") {
                                no_ra.fetch_add(1, Ordering::Relaxed);
                            }
                            r.bytes().await.ok();
                            lat_busy.lock().unwrap().push(s.elapsed());
                            busy.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {
                            other.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    drop(permit);
                });
            }
        })
    };
    generator.await.unwrap();
    let offered = total as f64 / t0.elapsed().as_secs_f64();
    // Every request answered: all the in-flight permits are back.
    let _all = inflight.acquire_many(2048).await.unwrap();
    let load_ended = t0.elapsed();
    // Until the inbox is empty.
    loop {
        if store.events_open().await.unwrap() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let emptied = t0.elapsed() - load_ended;
    stop.store(true, Ordering::Relaxed);
    sampler.await.unwrap();
    let samples = samples.lock().unwrap().clone();
    let ok = ok_sids.lock().unwrap().clone();
    let mut lat_ok = lat_ok.lock().unwrap().clone();
    lat_ok.sort();
    let mut lat_busy = lat_busy.lock().unwrap().clone();
    lat_busy.sort();
    println!(
        "offered {offered:.0} webhooks/s for {:.1} s: {} answered 200 ({:.0}/s), {} answered 503 ({} without Retry-After), {} other",
        load_ended.as_secs_f64(),
        ok.len(),
        ok.len() as f64 / load_ended.as_secs_f64(),
        busy.load(Ordering::Relaxed),
        busy_without_retry_after.load(Ordering::Relaxed),
        other.load(Ordering::Relaxed)
    );
    if !lat_ok.is_empty() {
        println!("200 latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms", pct(&lat_ok, 0.5), pct(&lat_ok, 0.99), pct(&lat_ok, 1.0));
    }
    if !lat_busy.is_empty() {
        println!("503 latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms", pct(&lat_busy, 0.5), pct(&lat_busy, 0.99), pct(&lat_busy, 1.0));
    }
    let max_backlog = samples.iter().map(|s| s.1).max().unwrap_or(0);
    let max_age = samples.iter().map(|s| s.2).fold(0.0, f64::max);
    let max_rss = samples.iter().map(|s| s.3).max().unwrap_or(0);
    println!(
        "inbox: largest backlog {max_backlog} events, oldest pending event at most {max_age:.1} s old; empty {:.2} s after the load stopped",
        emptied.as_secs_f64()
    );
    println!("memory (this process: server, clients and mock): {} MB before, at most {} MB", rss_before / 1024, max_rss / 1024);
    for (t, pending, age, rss) in &samples {
        println!("  t={t:5.1} s  backlog {pending:6}  oldest {age:5.1} s  rss {} MB", rss / 1024);
    }
    // Every 200 is a committed event: each acknowledged message is stored (and processed).
    let f = dropcheck_core::outbox::MessageFilter { direction: Some(dropcheck_core::domain::Direction::In), ..Default::default() };
    let mut stored = std::collections::HashSet::new();
    let mut cursor = None;
    loop {
        let (page, next) = store.list_messages(&f, cursor, 200).await.unwrap();
        stored.extend(page.into_iter().filter_map(|m| m.provider_message_id));
        match next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let lost = ok.iter().filter(|s| !stored.contains(*s)).count();
    println!("acknowledged but not stored: {lost} of {}", ok.len());
}
