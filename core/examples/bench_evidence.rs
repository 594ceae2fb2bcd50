//! The evidence pack of a 12-step drop (issue 15: ≤ 2 s):
//! `cargo run --release -p dropcheck-core --example bench_evidence [postgres]`.
//!
//! Twelve 12-megapixel JPEG photos (4000 × 3000, textured like a photograph, about 3 MB each)
//! and one retake are filed on a drop with verdicts and notes; the pack is made cold (no
//! resized copy of any photo yet: each is decoded and resized) and then warm (the copies kept).

use dropcheck_core::domain::{DropNumber, DropStatus, Phone, StepNo, Verdict, DEFAULT_DROP_PATTERN};
use dropcheck_core::media::MediaStore;
use dropcheck_core::store::{ActorRef, NewPhoto, StepVerdict};
use dropcheck_core::testing::TestDb;
use std::time::Instant;

fn big_photo(seed: u32) -> Vec<u8> {
    let (w, h) = (4000u32, 3000u32);
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        let n = (x.wrapping_mul(7919) ^ y.wrapping_mul(104_729) ^ seed.wrapping_mul(31)).wrapping_mul(2_654_435_761) >> 26;
        let v = ((x / 40 + y / 30 + seed) % 160) as u8 + (n as u8 & 63);
        image::Rgb([v, v.wrapping_add(30), v.wrapping_add(60)])
    });
    let mut out = vec![];
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90).encode_image(&img).unwrap();
    out
}

#[tokio::main]
async fn main() {
    let db = if std::env::args().any(|a| a == "postgres") { TestDb::postgres().await.expect("PostgreSQL") } else { TestDb::sqlite().await };
    let store = db.store.clone();
    let dir = tempfile::tempdir().unwrap();
    let media = MediaStore::new(dir.path());
    let project = store.create_project("Velo Test", DEFAULT_DROP_PATTERN).await.unwrap();
    let dn = DropNumber::parse("DR12345678").unwrap();
    let qa = ActorRef::system("qa@example.com");
    store.create_drop(&project, &dn, Some(&Phone::parse("+27640412391").unwrap()), DropStatus::Unreviewed, &qa).await.unwrap();
    let mut bytes = 0;
    for step in 1..=13 {
        let jpeg = big_photo(step);
        bytes += jpeg.len();
        let s = media.store_image(jpeg).await.unwrap();
        let n = StepNo::new(if step == 13 { 3 } else { step as i64 }).unwrap();
        store.add_photo(&dn, &NewPhoto::from_stored(n, &s, None, dropcheck_core::now_ms()), &qa).await.unwrap();
    }
    let verdicts: Vec<StepVerdict> = (1..=12)
        .map(|n| StepVerdict { step: StepNo::new(n).unwrap(), verdict: Verdict::Ok, reason: None, note: format!("step {n} checked") })
        .collect();
    store.set_verdicts(&dn, &verdicts, &qa).await.unwrap();
    println!("{}: 13 photos of 4000 × 3000, {:.1} MB in all", db.name, bytes as f64 / 1e6);
    for run in ["cold (copies made)", "warm (copies kept)", "warm again"] {
        let t = Instant::now();
        let pdf = dropcheck_core::evidence::evidence_pdf(&store, &media, &dn).await.unwrap();
        println!("{run}: {:.0} ms, {:.0} kB (goal ≤ 2 s)", t.elapsed().as_secs_f64() * 1000.0, pdf.len() as f64 / 1000.0);
    }
    db.cleanup().await;
}
