//! What the usable-photo checks cost per photo as WhatsApp delivers one (1600×1200 JPEG,
//! quality 75): decoding the JPEG, then measuring it (`photo_checks::measure`) and hashing it
//! (`pdq::pdq`, with its three turns, and `phash::phash`, with its three), on one core.
//!
//! `cargo run -p dropcheck-core --example bench_photo_checks` (the dev profile compiles the
//! core and its dependencies at opt-level 2; see Cargo.toml). Prints p50, p95 and the worst
//! of 60 photos; docs/PERFORMANCE.md records the figures beside the goal (≤ 150 ms p95).

use dropcheck_core::photo_checks::{judge, measure, Thresholds};
use image::{DynamicImage, ImageReader, Rgb, RgbImage};
use std::io::Cursor;
use std::time::{Duration, Instant};

fn photo(seed: u32) -> Vec<u8> {
    let (w, h) = (1600u32, 1200u32);
    let mut s = seed.wrapping_mul(2_654_435_761).max(1);
    let img = RgbImage::from_fn(w, h, |x, y| {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        let base = 40 + (x * 120 / w) + (y * 60 / h);
        let shapes = if ((x + seed) / 53 + y / 41) % 3 == 0 { 40 } else { 0 };
        let v = (base + shapes + s % 24).min(255) as u8;
        Rgb([v, v.saturating_sub(15), v.saturating_add(10)])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 75).encode_image(&img).expect("encodes");
    out
}

fn main() {
    let photos: Vec<Vec<u8>> = (0..6).map(photo).collect();
    let t = Thresholds::default();
    let (mut decode, mut checked, mut total) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..60 {
        let bytes = &photos[i % photos.len()];
        let start = Instant::now();
        let img: DynamicImage = ImageReader::new(Cursor::new(bytes)).with_guessed_format().unwrap().decode().unwrap();
        let decoded = start.elapsed();
        let checks = judge(&measure(&img), false, &t);
        std::hint::black_box(checks);
        checked.push(start.elapsed());
        std::hint::black_box(dropcheck_core::pdq::pdq(&img));
        std::hint::black_box(dropcheck_core::phash::phash(&img));
        decode.push(decoded);
        total.push(start.elapsed());
    }
    let pct = |v: &mut Vec<Duration>, p: f64| {
        v.sort();
        v[((v.len() as f64 - 1.0) * p).round() as usize]
    };
    println!("1600x1200 JPEG q75, {} bytes; 60 photos, one at a time", photos[0].len());
    println!(
        "decode            p50 {:>7.1?}  p95 {:>7.1?}  max {:>7.1?}",
        pct(&mut decode, 0.5),
        pct(&mut decode, 0.95),
        pct(&mut decode, 1.0)
    );
    println!(
        "decode + checks   p50 {:>7.1?}  p95 {:>7.1?}  max {:>7.1?}",
        pct(&mut checked, 0.5),
        pct(&mut checked, 0.95),
        pct(&mut checked, 1.0)
    );
    println!(
        "... + PDQ, pHash  p50 {:>7.1?}  p95 {:>7.1?}  max {:>7.1?}   (goal: p95 <= 150 ms)",
        pct(&mut total, 0.5),
        pct(&mut total, 0.95),
        pct(&mut total, 1.0)
    );
}
