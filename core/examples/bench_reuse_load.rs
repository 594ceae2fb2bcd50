//! Filling the reuse index from the database, as a server does at start-up:
//! `cargo run -p dropcheck-core --example bench_reuse_load [thousands] [postgres] [hints]`
//! (default 1000, i.e. 1 M photos, on SQLite; `postgres` uses the test database as the tests
//! do; `hints` keeps the pHashes too, as `DROPCHECK_REUSE_HINTS=on` does).
//! Writes that many photos with random PDQ hashes and pHashes into a fresh database, then times
//! `Store::refresh_reuse_index` (pages of 50 000 rows) and 50 lookups after it, each with the
//! refresh it makes first.

use dropcheck_core::domain::DEFAULT_DROP_PATTERN;
use dropcheck_core::pdq::{Hash256, Pdq};
use dropcheck_core::phash::PHash;
use dropcheck_core::testing::{execute_raw, TestDb};
use std::time::Instant;

#[tokio::main]
async fn main() {
    let thousands: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1000);
    let db = if std::env::args().any(|a| a == "postgres") {
        TestDb::postgres().await.expect("PostgreSQL at the test address")
    } else {
        TestDb::sqlite().await
    };
    let store = &db.store;
    store.set_reuse_hints(std::env::args().any(|a| a == "hints")).unwrap();
    let project = store.create_project("Bench", DEFAULT_DROP_PATTERN).await.unwrap();
    execute_raw(store, &format!(
        "insert into drop_job (drop_number, project_id, status, round, created_at, activity_at) values ('DR00000001', {}, 'collecting', 1, 0, 0)",
        project.project_id.get()
    ))
    .await;
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let started = Instant::now();
    let n = thousands * 1000;
    for chunk in 0..thousands {
        let (mut photos, mut measures) = (Vec::with_capacity(1000), Vec::with_capacity(1000));
        for i in 0..1000 {
            let id = chunk * 1000 + i + 1;
            let sha = format!("{id:064x}");
            let hash = Hash256([next(), next(), next(), next()]).to_hex();
            photos.push(format!("((select drop_id from drop_job), 1, '{sha}', 'image/jpeg', 1, 1, 1, 1, 0)"));
            let phash = next() as i64;
            measures.push(format!("('{sha}', 1, 1600, 100, 0, 300, 500, '{hash}', 100, 1, {phash}, 1)"));
        }
        execute_raw(
            store,
            &format!(
                "insert into photo (drop_id, step_no, sha256, mime_type, size_bytes, width, height, round, received_at) values {}",
                photos.join(", ")
            ),
        )
        .await;
        execute_raw(store, &format!(
            "insert into photo_measure (sha256, algo_version, long_side, mean_luma, bright_share, laplacian_var, best_tile_var, pdq_hash, pdq_quality, pdq_version, phash, phash_version) values {}",
            measures.join(", ")
        ))
        .await;
    }
    println!("{} on {}: {n} photos written in {:.1} s", db.name, db.url.split('?').next().unwrap_or(""), started.elapsed().as_secs_f64());
    let started = Instant::now();
    let added = store.refresh_reuse_index().await.unwrap();
    println!("refresh_reuse_index: {added} photos loaded in {:.2} s", started.elapsed().as_secs_f64());
    // Lookups as the inbox makes them: each refreshes first (nothing new here), then scans.
    let mut times = vec![];
    for _ in 0..50 {
        let probe = Pdq {
            hash: Hash256([next(), next(), next(), next()]),
            quality: 100,
            rotations: [Hash256([next(), next(), next(), next()]); 3],
        };
        let started = Instant::now();
        store.similar_photos(&probe, Some(&PHash { hash: next(), rotations: [next(), next(), next()] })).await.unwrap();
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!("lookups with their refresh: p50 {:.1} ms, p98 {:.1} ms, max {:.1} ms (50)", times[25], times[48], times[49]);
    if std::env::var_os("KEEP").is_none() {
        db.cleanup().await;
    }
}
