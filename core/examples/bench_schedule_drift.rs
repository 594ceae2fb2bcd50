//! Schedule drift (issue 14: p99 ≤ 20 s): how late a `schedule.cron` run starts after its
//! instant, with the servers' default sweep.
//! `cargo run --release -p dropcheck-core --example bench_schedule_drift [MINUTES] [postgres]`
//! (default 10 minutes of the clock).
//!
//! Two servers (two connection pools on one database) run the sweep loop every server runs —
//! held statuses, schedules, birthdays, delayed runs, campaigns, then a 15 s sleep
//! (`DROPCHECK_AUTOMATION_SWEEP_SECONDS`'s default) — the second starting 7 s after the first.
//! Twenty rules run every minute, each queueing a text. The drift of a run is its start minus
//! its instant; every instant must run exactly once.

use dropcheck_core::automation::RuleSpec;
use dropcheck_core::domain::Phone;
use dropcheck_core::now_ms;
use dropcheck_core::store::Store;
use dropcheck_core::testing::TestDb;
use std::time::Duration;

const SWEEP: Duration = Duration::from_secs(15);
const RULES: usize = 20;

async fn server(store: Store, until: i64) {
    while now_ms() < until {
        let now = now_ms();
        store.sweep_held(now).await.unwrap();
        store.sweep_schedules(now).await.unwrap();
        store.sweep_birthdays(now).await.unwrap();
        store.sweep_delayed(now).await.unwrap();
        store.sweep_campaigns(now).await.unwrap();
        tokio::time::sleep(SWEEP).await;
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let minutes: i64 = args.iter().skip(1).find_map(|a| a.parse().ok()).unwrap_or(10);
    let db = if args.iter().any(|a| a == "postgres") { TestDb::postgres().await.expect("PostgreSQL") } else { TestDb::sqlite().await };
    let a = db.store.clone();
    let b = Store::connect(&db.url).await.expect("a second server's pool");
    let phone = Phone::parse("+27831234567").unwrap();
    a.upsert_contact(&phone, "Thabo").await.unwrap();
    a.note_inbound(&phone, now_ms()).await.unwrap();
    let mut rules = vec![];
    for i in 0..RULES {
        let spec = RuleSpec::parse(&serde_json::json!({
            "name": format!("Every minute {i}"),
            "trigger": {"type": "schedule.cron", "cron": "* * * * *", "time_zone": "Africa/Johannesburg"},
            "actions": [{"type": "send_text", "to": "+27831234567", "text": "tick {{ scheduled_for }}"}]
        }))
        .unwrap();
        rules.push(a.create_rule(&spec).await.unwrap().id);
    }
    let until = now_ms() + minutes * 60_000;
    println!("{} for {minutes} minutes: two servers sweeping every {} s, {RULES} rules every minute …", db.name, SWEEP.as_secs());
    let first = tokio::spawn(server(a.clone(), until));
    tokio::time::sleep(Duration::from_secs(7)).await;
    let second = tokio::spawn(server(b.clone(), until));
    first.await.unwrap();
    second.await.unwrap();

    let mut drift = vec![];
    for rule in rules {
        let runs = a.automation_runs(rule, None, 1000).await.unwrap();
        let mut instants = vec![];
        for r in runs {
            let at = r.context["scheduled_for"].as_str().unwrap();
            let t = time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).unwrap();
            let at_ms = (t.unix_timestamp_nanos() / 1_000_000) as i64;
            instants.push(at_ms);
            drift.push(r.started_at - at_ms);
        }
        instants.sort();
        let n = instants.len();
        instants.dedup();
        assert_eq!(instants.len(), n, "rule {rule}: an instant ran twice");
        assert!(instants.windows(2).all(|w| w[1] - w[0] == 60_000), "rule {rule}: an instant was skipped");
    }
    drift.sort();
    let pct = |p: f64| drift[((drift.len() as f64 * p).ceil() as usize).clamp(1, drift.len()) - 1] as f64 / 1000.0;
    println!(
        "{} runs, each instant once: drift p50 {:.1} s, p99 {:.1} s, max {:.1} s (goal p99 ≤ 20 s)",
        drift.len(),
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    b.close().await;
    db.cleanup().await;
}
