//! The reuse lookup at archive scale: `cargo run -p dropcheck-core --example bench_reuse
//! [millions] [hints]` (default 1, no hints). Random 256-bit hashes stand in for the archive
//! (unrelated photos are about 128 bits apart, as random hashes are); each query is a photo and
//! its three turns, as on arrival. With `hints`, every photo has a random 64-bit pHash too and
//! each lookup also looks for "possibly reused" neighbours, as on arrival with
//! `DROPCHECK_REUSE_HINTS=on`. Prints the lookup's p50 / p99 / max over 200 queries and the
//! index's memory.

use dropcheck_core::pdq::Hash256;
use dropcheck_core::phash::PHash;
use dropcheck_core::store::ReuseIndex;
use std::time::Instant;

fn main() {
    let millions: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1);
    let hints = std::env::args().nth(2).is_some_and(|a| a == "hints");
    let n = millions * 1_000_000;
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut index = if hints { ReuseIndex::with_hints() } else { ReuseIndex::default() };
    for id in 0..n as i64 {
        index.add(id, Hash256([next(), next(), next(), next()]), Some(next()));
    }
    // Half the queries are a stored hash with 20 bits changed (a match), half are new photos.
    let mut times = vec![];
    let mut matched = 0;
    for q in 0..200 {
        let mut h = Hash256([next(), next(), next(), next()]);
        if q % 2 == 0 {
            let mut s = Hash256([next(), next(), next(), next()]);
            index.add(n as i64 + q, s, Some(next()));
            for b in 0..20 {
                s.0[b % 4] ^= 1 << (b * 3);
            }
            h = s;
        }
        let queries = [
            h,
            Hash256([next(), next(), next(), next()]),
            Hash256([next(), next(), next(), next()]),
            Hash256([next(), next(), next(), next()]),
        ];
        let phash = PHash { hash: next(), rotations: [next(), next(), next()] };
        let t = Instant::now();
        let (found, hinted) = index.look_up(&queries, Some(&phash));
        std::hint::black_box(hinted);
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        matched += usize::from(!found.is_empty());
    }
    times.sort_by(f64::total_cmp);
    let at = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)];
    println!(
        "{} hashes{}, 4 turns per query: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; {} of 200 queries matched (100 expected); index {:.1} MB ({:.1} MB per million)",
        index.len(),
        if hints { " with pHash hints" } else { "" },
        at(0.5),
        at(0.99),
        times[times.len() - 1],
        matched,
        index.bytes() as f64 / 1e6,
        index.bytes() as f64 / 1e6 / (index.len() as f64 / 1e6),
    );
}
