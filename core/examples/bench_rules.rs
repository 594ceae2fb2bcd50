//! Rule evaluation (issue 14: one event against 100 enabled rules ≤ 1 ms p99):
//! `cargo run --release -p dropcheck-core --example bench_rules [postgres]`.
//!
//! 1. Pure: 100 parsed rules (a mix of triggers, each with two conditions) matched and their
//!    conditions evaluated against one drop status change — what every rule costs per event.
//! 2. In the store: a status change's whole rule step inside its transaction — the event
//!    recorded, the 100 enabled `drop.status_changed` rules read and parsed, matched and
//!    their conditions evaluated (none holds, so each logs a skipped run) — timed per event,
//!    rolled back each time.

use dropcheck_core::automation::{condition_result, drop_context, trigger_matches, Event, RuleSpec};
use dropcheck_core::domain::{DropNumber, DropStatus, Phone, DEFAULT_DROP_PATTERN};
use dropcheck_core::store::ActorRef;
use dropcheck_core::testing::TestDb;
use serde_json::json;
use std::time::Instant;

fn rule(i: usize) -> serde_json::Value {
    let trigger = match i % 4 {
        0 => json!({"type": "drop.status_changed", "to": "approved"}),
        1 => json!({"type": "drop.status_changed", "from": "unreviewed"}),
        2 => json!({"type": "drop.status_changed"}),
        _ => json!({"type": "drop.status_held", "status": "incomplete", "minutes": 60}),
    };
    json!({"name": format!("rule {i}"), "trigger": trigger,
        "conditions": {"all": [{"field": "project", "op": "eq", "value": format!("Project {i}")}, {"field": "round", "op": "gt", "value": 0}],
                       "any": [{"field": "contractor_name", "op": "starts_with", "value": "Th"}]},
        "actions": [{"type": "send_template", "template": "drop_reminder", "to": "contact"}]})
}

fn percentiles(mut us: Vec<f64>) -> (f64, f64, f64) {
    us.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let at = |p: f64| us[((us.len() as f64 * p) as usize).min(us.len() - 1)];
    (at(0.5), at(0.99), us[us.len() - 1])
}

#[tokio::main]
async fn main() {
    let rules: Vec<RuleSpec> = (0..100).map(|i| RuleSpec::parse(&rule(i)).unwrap()).collect();
    let ctx =
        drop_context("DR12345678", "Project 7", DropStatus::Incomplete, Some(DropStatus::Unreviewed), 1, Some(("Thabo", "+27640412391")));
    let event = Event::DropStatusChanged { from: DropStatus::Unreviewed, to: DropStatus::Incomplete };
    let mut times = vec![];
    let mut held = 0;
    for _ in 0..10_000 {
        let t = Instant::now();
        held = 0;
        for r in &rules {
            if trigger_matches(&r.trigger, &event) && condition_result(&r.conditions, &ctx) == Ok(true) {
                held += 1;
            }
        }
        times.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let (p50, p99, max) = percentiles(times);
    println!("pure: 100 rules against one event ({held} held): p50 {p50:.1} µs, p99 {p99:.1} µs, max {max:.1} µs");

    let db = if std::env::args().any(|a| a == "postgres") { TestDb::postgres().await.expect("PostgreSQL") } else { TestDb::sqlite().await };
    let store = &db.store;
    let project = store.create_project("Velo Test", DEFAULT_DROP_PATTERN).await.unwrap();
    let number = DropNumber::parse("DR12345678").unwrap();
    store
        .create_drop(&project, &number, Some(&Phone::parse("+27640412391").unwrap()), DropStatus::Unreviewed, &ActorRef::system("bench"))
        .await
        .unwrap();
    for i in 0..100 {
        let mut r = rule(i);
        r["trigger"] = json!({"type": "drop.status_changed"});
        store.create_rule(&RuleSpec::parse(&r).unwrap()).await.unwrap();
    }
    let mut detail = store.drop_detail(&number).await.unwrap();
    detail.status = DropStatus::Unreviewed;
    let mut times = vec![];
    for _ in 0..300 {
        let mut tx = store.begin().await.unwrap();
        let t = Instant::now();
        tx.drop_status_changed(&detail, DropStatus::Incomplete).await.unwrap();
        times.push(t.elapsed().as_secs_f64() * 1e6);
        tx.rollback().await.unwrap();
    }
    let (p50, p99, max) = percentiles(times);
    println!(
        "in the store ({}): a status change's rule step with 100 enabled rules (event + 100 skipped runs logged): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        store.backend(),
        p50 / 1000.0,
        p99 / 1000.0,
        max / 1000.0
    );
    db.cleanup().await;
}
