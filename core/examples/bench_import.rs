//! CSV import of contacts (issue 14: 10 000 rows ≤ 10 s on SQLite):
//! `cargo run --release -p dropcheck-core --example bench_import [postgres]`.
//!
//! A generated file of 10 000 rows (national numbers read with the default region ZA, a name,
//! an enum and a number attribute, two tags, a birthday; every 100th row bad) is staged and
//! imported as a user would: the preview first (the whole import, rolled back), then the
//! import itself, then the same file again (every number known: skipped), then again with
//! `overwrite` (every contact compared, none changed).

use dropcheck_core::contacts::{AttrType, AttributeDef};
use dropcheck_core::store::{ContactFilter, ImportMapping, ImportMode};
use dropcheck_core::testing::TestDb;
use std::time::Instant;

const ROWS: usize = 10_000;

fn file() -> String {
    let mut s = String::from("Mobile,Full name,Plan,Cable metres,Tags,Birthday\n");
    for i in 0..ROWS {
        if i % 100 == 99 {
            s.push_str(&format!("12{i},Bad row {i},Gold,1,,\n"));
            continue;
        }
        // 082 000 0000 + i: South African mobile numbers, written nationally.
        let plan = if i % 2 == 0 { "Gold" } else { "Silver" };
        s.push_str(&format!(
            "082 {:03} {:04},Contractor {i},{plan},{}.5,\"crew-{};field\",{:02}/{:02}\n",
            i / 10_000 + 100,
            i % 10_000,
            i % 300,
            i % 7,
            i % 28 + 1,
            i % 12 + 1
        ));
    }
    s
}

#[tokio::main]
async fn main() {
    let db = if std::env::args().any(|a| a == "postgres") { TestDb::postgres().await.expect("PostgreSQL") } else { TestDb::sqlite().await };
    let store = db.store.clone();
    let plan =
        AttributeDef { key: "plan".into(), label: "Plan".into(), kind: AttrType::Enum, options: vec!["Gold".into(), "Silver".into()] };
    store.save_attribute_def(&plan).await.unwrap();
    let metres = AttributeDef { key: "cable_m".into(), label: "Cable metres".into(), kind: AttrType::Number, options: vec![] };
    store.save_attribute_def(&metres).await.unwrap();
    let text = file();
    let cols = [
        ("Mobile", "phone"),
        ("Full name", "name"),
        ("Plan", "attribute:plan"),
        ("Cable metres", "attribute:cable_m"),
        ("Tags", "tags"),
        ("Birthday", "birthday"),
    ];
    let mut m = ImportMapping {
        columns: cols.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect(),
        default_region: Some("ZA".into()),
        mode: ImportMode::Skip,
        fire_rules: false,
    };
    let t = Instant::now();
    let id = store.stage_import("bench.csv", &text, "bench").await.unwrap();
    println!("{} ({} rows, {} KB): staged in {:.2} s", db.name, ROWS, text.len() / 1024, t.elapsed().as_secs_f64());
    let t = Instant::now();
    let preview = store.run_import(id, &m, true, "bench").await.unwrap();
    println!("preview: {} to create, {} rejected — {:.2} s", preview.created, preview.rejected, t.elapsed().as_secs_f64());
    let t = Instant::now();
    let r = store.run_import(id, &m, false, "bench").await.unwrap();
    println!("import: {} created, {} rejected — {:.2} s", r.created, r.rejected, t.elapsed().as_secs_f64());
    let t = Instant::now();
    let r2 = store.run_import(id, &m, false, "bench").await.unwrap();
    println!("the same file again (skip): {} created, {} skipped — {:.2} s", r2.created, r2.skipped, t.elapsed().as_secs_f64());
    m.mode = ImportMode::Overwrite;
    let t = Instant::now();
    let r3 = store.run_import(id, &m, false, "bench").await.unwrap();
    println!("again with overwrite: {} updated, {} unchanged — {:.2} s", r3.updated, r3.unchanged, t.elapsed().as_secs_f64());
    let total = store.contacts(&ContactFilter { limit: 1, ..Default::default() }).await.unwrap().1;
    assert_eq!(total as usize, r.created, "no contact twice");
    db.cleanup().await;
}
