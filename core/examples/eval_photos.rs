//! The photo checks measured on real photographs (`scripts/eval-photos` gathers them from
//! registry packages and runs this): reuse recall per change, false matches between distinct
//! photos, and how often the usable-photo checks flag blurred, darkened and untouched copies.
//! With `reference.csv` in the folder (`hash,quality,file` from Meta's own PDQ on the same
//! pixels) it also prints how far this PDQ is from Meta's on each photo.
//!
//! `cargo run -p dropcheck-core --example eval_photos -- DIR` (DIR holds PNG or JPEG photos).
//! Prints Markdown; docs/PERFORMANCE.md records the figures beside their goals.

use dropcheck_core::pdq::{pdq, Hash256, Pdq, MATCH_DISTANCE, QUALITY_GATE};
use dropcheck_core::phash::{phash, PHash, HINT_DISTANCE};
use dropcheck_core::photo_checks::{judge, measure, CheckKind, CheckResult, Measures, Thresholds};
use image::{DynamicImage, GenericImageView, ImageFormat, Rgb, RgbImage};
use std::collections::HashMap;
use std::io::Cursor;
use std::path::PathBuf;

/// A generated change of a photo, by its name in the report.
type Change = (&'static str, fn(&DynamicImage) -> DynamicImage);

const CHANGES: &[Change] = &[
    ("JPEG q50", |i| jpeg(i, 50)),
    ("resize 50 % + JPEG q30", |i| jpeg(&scale(i, 0.5), 30)),
    ("resize 25 %", |i| scale(i, 0.25)),
    ("brightness +30 %", |i| map_rgb(i, |v| v * 1.3)),
    ("brightness −30 %", |i| map_rgb(i, |v| v * 0.7)),
    ("contrast +40 %", |i| map_rgb(i, |v| (v - 128.0) * 1.4 + 128.0)),
    ("rotation 90°", |i| i.rotate90()),
    ("crop 5 % a side", crop5),
];

/// The changes the goal (recall ≥ 0.95) covers: all but the crop.
const GOAL_CHANGES: usize = 7;

fn main() {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| die("usage: eval_photos DIR")));
    let mut photos: Vec<(String, DynamicImage)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| die(&format!("{}: {e}", dir.display())))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("png" | "jpg" | "jpeg")))
        .map(|p| {
            let img = image::open(&p).unwrap_or_else(|e| die(&format!("{}: {e}", p.display())));
            (p.file_name().expect("a file").to_string_lossy().into_owned(), img)
        })
        .collect();
    photos.sort_by(|a, b| a.0.cmp(&b.0));
    if photos.len() < 2 {
        die("at least two photos are needed");
    }
    let hashes: Vec<Pdq> = photos.iter().map(|(_, i)| pdq(i)).collect();
    println!("{} photos: {}\n", photos.len(), photos.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", "));

    reference(&dir, &photos, &hashes);

    // Reuse: each change of each photo looked up as the index does (the changed photo's four
    // turns against the original's hash; both qualities above the gate).
    println!("## Reuse recall (PDQ ≤ {MATCH_DISTANCE} bits in any quarter turn)\n");
    println!("| change | found | recall | median distance | largest |\n|---|---|---|---|---|");
    let mut variants: Vec<Vec<Pdq>> = hashes.iter().map(|h| vec![*h]).collect();
    let mut goal_met = true;
    for (ci, (name, change)) in CHANGES.iter().enumerate() {
        let mut dists = Vec::new();
        let mut found = 0;
        let mut missed = Vec::new();
        for (pi, (pname, img)) in photos.iter().enumerate() {
            let changed = pdq(&change(img));
            let d = changed.distance_any_turn(&hashes[pi].hash);
            if matches(&changed, &hashes[pi], d) {
                found += 1;
            } else {
                missed.push(format!("{pname} ({d} bits, quality {})", changed.quality));
            }
            dists.push(d);
            variants[pi].push(changed);
        }
        if !missed.is_empty() && ci < GOAL_CHANGES {
            eprintln!("{name}: missed {}", missed.join(", "));
        }
        dists.sort_unstable();
        let recall = found as f64 / photos.len() as f64;
        if ci < GOAL_CHANGES {
            goal_met &= recall >= 0.95;
        }
        println!("| {name} | {found} of {} | {recall:.2} | {} | {} |", photos.len(), dists[dists.len() / 2], dists[dists.len() - 1]);
    }

    // False matches: every pair of distinct photos, as originals and across all their changed
    // copies (a changed copy of one against any copy of another).
    let (mut pairs, mut false_orig, mut closest) = (0, 0, u32::MAX);
    let (mut cross_pairs, mut false_cross) = (0usize, Vec::new());
    for a in 0..photos.len() {
        for b in a + 1..photos.len() {
            let d = hashes[a].distance_any_turn(&hashes[b].hash);
            pairs += 1;
            closest = closest.min(d);
            false_orig += usize::from(matches(&hashes[a], &hashes[b], d));
            for va in &variants[a] {
                for vb in &variants[b] {
                    let d = va.distance_any_turn(&vb.hash);
                    cross_pairs += 1;
                    if matches(va, vb, d) {
                        false_cross.push((photos[a].0.clone(), photos[b].0.clone(), d));
                    }
                }
            }
        }
    }
    false_cross.dedup_by(|x, y| x.0 == y.0 && x.1 == y.1);
    println!("\nFalse matches among the {pairs} pairs of distinct photos: {false_orig} (closest pair {closest} bits apart);");
    println!("among {cross_pairs} pairs of their copies (every change of one against every change of another): {}", false_cross.len());
    for (a, b, d) in &false_cross {
        println!("- {a} and {b}: {d} bits");
    }

    hints(&photos);

    // Usable-photo checks: blurred, darkened and untouched copies.
    let t = Thresholds::default();
    let flagged = |img: &DynamicImage, kinds: &[CheckKind]| {
        let m = Measures { pdq_quality: Some(pdq(img).quality), ..measure(img) };
        judge(&m, false, &t).iter().any(|c| c.result == CheckResult::Flag && kinds.contains(&c.kind))
    };
    let usable = [CheckKind::Dark, CheckKind::Overexposed, CheckKind::Blurred, CheckKind::Featureless];
    let rate = |f: &dyn Fn(&DynamicImage) -> bool| photos.iter().filter(|(_, i)| f(i)).count() as f64 / photos.len() as f64;
    let blurred = |i: &DynamicImage, sigma: f32| DynamicImage::ImageRgb8(image::imageops::blur(&i.to_rgb8(), sigma));
    for (name, img) in &photos {
        let b = blurred(img, 2.0);
        if !flagged(&b, &[CheckKind::Blurred]) {
            let m = measure(&b);
            eprintln!("blurred σ 2 not flagged: {name}: Laplacian variance {:.0}, best tile {:.0}", m.laplacian_var, m.best_tile_var);
        }
    }
    let blur2 = rate(&|i| flagged(&blurred(i, 2.0), &[CheckKind::Blurred]));
    let blur3 = rate(&|i| flagged(&blurred(i, 3.0), &[CheckKind::Blurred]));
    let dark = rate(&|i| flagged(&map_rgb(i, |v| v * 0.25), &[CheckKind::Dark]));
    let untouched = rate(&|i| flagged(i, &usable));
    println!("\n## Usable-photo checks (default thresholds)\n");
    println!("| copies | flagged | for |\n|---|---|---|");
    println!("| blurred, Gaussian σ 2 | {blur2:.2} | blurred |");
    println!("| blurred, Gaussian σ 3 | {blur3:.2} | blurred |");
    println!("| darkened to 25 % | {dark:.2} | too dark |");
    println!("| untouched | {untouched:.2} | any of too dark, over-exposed, blurred, featureless |");
    for (name, img) in &photos {
        if flagged(img, &usable) {
            let m = measure(img);
            println!(
                "- untouched {name} flagged: mean luma {:.0}, Laplacian variance {:.0}, best tile {:.0}",
                m.mean_luma, m.laplacian_var, m.best_tile_var
            );
        }
    }
    let checks_met = blur2 >= 0.9 && dark >= 0.9 && untouched <= 0.05;
    println!(
        "\nGoals: reuse recall ≥ 0.95 on the first {GOAL_CHANGES} changes with 0 false matches: {};",
        met(goal_met && false_orig == 0)
    );
    println!("blurred and darkened copies flagged ≥ 0.9 with ≤ 0.05 of the untouched: {}", met(checks_met));
}

/// The crop-tolerant tier: how often a pHash hint finds each change that PDQ missed, and how
/// many pairs of distinct photos (originals, and every copy of one against every copy of the
/// other) it would wrongly call "possibly reused", at the hint's distance and at 16.
fn hints(photos: &[(String, DynamicImage)]) {
    let originals: Vec<PHash> = photos.iter().map(|(_, i)| phash(i)).collect();
    println!("\n## \"Possibly reused\" hints (pHash-64 ≤ {HINT_DISTANCE} bits in any quarter turn; review only)\n");
    println!("| change | found ≤ {HINT_DISTANCE} | found ≤ 16 | median distance |\n|---|---|---|---|");
    let mut copies: Vec<Vec<PHash>> = originals.iter().map(|h| vec![*h]).collect();
    for (name, change) in CHANGES {
        let mut d: Vec<u32> = photos
            .iter()
            .zip(&originals)
            .zip(copies.iter_mut())
            .map(|(((_, img), h), list)| {
                let c = phash(&change(img));
                list.push(c);
                c.distance_any_turn(h.hash)
            })
            .collect();
        d.sort_unstable();
        let within = |t: u32| d.iter().filter(|&&x| x <= t).count();
        println!("| {name} | {} of {n} | {} of {n} | {} |", within(HINT_DISTANCE), within(16), d[d.len() / 2], n = d.len());
    }
    let (mut pairs, mut near, mut near16, mut cross, mut cross_near) = (0, vec![], 0, 0usize, 0usize);
    for a in 0..photos.len() {
        for b in a + 1..photos.len() {
            pairs += 1;
            let d = originals[a].distance_any_turn(originals[b].hash);
            if d <= HINT_DISTANCE {
                near.push(format!("{} and {} ({d} bits)", photos[a].0, photos[b].0));
            }
            near16 += usize::from(d <= 16);
            for ca in &copies[a] {
                for cb in &copies[b] {
                    cross += 1;
                    cross_near += usize::from(ca.distance_any_turn(cb.hash) <= HINT_DISTANCE);
                }
            }
        }
    }
    println!("\nFalse hints among the {pairs} pairs of distinct photos: {} at ≤ {HINT_DISTANCE}, {near16} at ≤ 16;", near.len());
    println!("among {cross} pairs of their copies: {cross_near} at ≤ {HINT_DISTANCE}.");
    for n in &near {
        println!("- {n}");
    }
}

/// Whether two photos count as the same one: a PDQ match with both hashes above the gate.
fn matches(a: &Pdq, b: &Pdq, distance: u32) -> bool {
    a.quality > QUALITY_GATE && b.quality > QUALITY_GATE && distance <= MATCH_DISTANCE
}

/// This PDQ against Meta's on the same pixels (`reference.csv`, when present).
fn reference(dir: &std::path::Path, photos: &[(String, DynamicImage)], hashes: &[Pdq]) {
    let Ok(text) = std::fs::read_to_string(dir.join("reference.csv")) else { return };
    let want: HashMap<&str, (Hash256, &str)> = text
        .lines()
        .filter_map(|l| {
            let mut p = l.trim().split(',');
            let (h, q, f) = (p.next()?, p.next()?, p.next()?);
            Some((f, (Hash256::from_hex(h)?, q)))
        })
        .collect();
    println!("## This PDQ against Meta's (its C++ implementation, on the same decoded pixels)\n");
    println!("| photo | quality (Meta's) | distance |\n|---|---|---|");
    let mut worst = 0;
    for ((name, _), h) in photos.iter().zip(hashes) {
        if let Some((hash, q)) = want.get(name.as_str()) {
            let d = h.hash.distance(hash);
            worst = worst.max(d);
            println!("| {name} | {} ({q}) | {d} |", h.quality);
        }
    }
    println!("\nLargest distance: {worst} bits (PDQ's rule: ≤ 10 for quality ≥ 80).\n");
}

fn jpeg(img: &DynamicImage, quality: u8) -> DynamicImage {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality).encode_image(&img.to_rgb8()).expect("encodes in memory");
    image::load(Cursor::new(out), ImageFormat::Jpeg).expect("decodes what it encoded")
}

fn scale(img: &DynamicImage, f: f64) -> DynamicImage {
    let (w, h) = img.dimensions();
    let side = |v: u32| ((f64::from(v) * f).round() as u32).max(1);
    img.resize_exact(side(w), side(h), image::imageops::FilterType::Triangle)
}

fn map_rgb(img: &DynamicImage, f: fn(f32) -> f32) -> DynamicImage {
    let rgb = img.to_rgb8();
    DynamicImage::ImageRgb8(RgbImage::from_fn(rgb.width(), rgb.height(), |x, y| {
        let p = rgb.get_pixel(x, y).0;
        Rgb(p.map(|c| f(f32::from(c)).round().clamp(0.0, 255.0) as u8))
    }))
}

fn crop5(img: &DynamicImage) -> DynamicImage {
    let (w, h) = img.dimensions();
    img.crop_imm(w / 20, h / 20, w - w / 10, h - h / 10)
}

fn met(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "NOT met"
    }
}

fn die(msg: &str) -> ! {
    eprintln!("eval_photos: {msg}");
    std::process::exit(2)
}
