//! PDQ, Meta's 256-bit perceptual hash for "the same photo, re-encoded, resized or re-lit",
//! written from its published description (`facebook/ThreatExchange`, `pdq/README.md` and the
//! hashing paper): luma → two passes of a Jarosz (box) filter along rows and columns, sized to
//! the photo → 64×64 samples → the 16×16 lowest non-constant DCT coefficients → one bit per
//! coefficient, set where it is above their median. Its quality (0–100) is the sum of the
//! 64×64 image's gradients: a featureless photo (a covered lens, a blank wall) scores low, and
//! its hash says little.
//!
//! The hashes of the photo turned 90°, 180° and 270° come from the same filtered image,
//! sampled where the turned photo's own decimation samples it: the turned photo's own hash,
//! to the bit, for a DCT each instead of another pass over the pixels.
//!
//! Checked against Meta's own implementation: the test `agrees_with_meta_on_the_same_pixels`
//! holds hashes Meta's C++ code (through the `pdqhash` package) gave for generated images; on
//! Meta's published reference photos (`pdq/data/bridge-mods`, not in this repository) every
//! hash is within 10 bits of the published one (`core/examples/pdq_hash.rs`,
//! docs/PERFORMANCE.md).

use image::DynamicImage;

/// The version of the hash as computed here (stored with every hash).
pub const PDQ_VERSION: i64 = 1;

/// Hamming distance at or under which two hashes are the same photo (PDQ's documented value).
pub const MATCH_DISTANCE: u32 = 31;

/// Hashes of a quality at or under this say too little to match on (PDQ's documented gate).
pub const QUALITY_GATE: u8 = 49;

const SIDE: usize = 64;
const COEFFS: usize = 16;

/// 256 bits, as four words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Hash256(pub [u64; 4]);

impl Hash256 {
    pub fn distance(&self, other: &Hash256) -> u32 {
        self.0.iter().zip(other.0.iter()).map(|(a, b)| (a ^ b).count_ones()).sum()
    }

    /// 64 lower-case hex digits, as Meta's tools write a PDQ hash (the last 16 bits first).
    pub fn to_hex(&self) -> String {
        self.0.iter().rev().map(|w| format!("{w:016x}")).collect()
    }

    pub fn from_hex(hex: &str) -> Option<Hash256> {
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let mut words = [0u64; 4];
        for (i, w) in words.iter_mut().rev().enumerate() {
            *w = u64::from_str_radix(&hex[i * 16..i * 16 + 16], 16).ok()?;
        }
        Some(Hash256(words))
    }
}

/// A photo's PDQ hash, its quality, and the hashes it would have turned 90°, 180° and 270°.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pdq {
    pub hash: Hash256,
    pub quality: u8,
    pub rotations: [Hash256; 3],
}

impl Pdq {
    /// The smallest distance from `other` to this photo in any of its four turns.
    pub fn distance_any_turn(&self, other: &Hash256) -> u32 {
        std::iter::once(&self.hash).chain(self.rotations.iter()).map(|h| h.distance(other)).min().unwrap_or(256)
    }
}

/// PDQ of a photo (as decoded, upright).
pub fn pdq(img: &DynamicImage) -> Pdq {
    let rgb = img.to_rgb8();
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    let mut luma: Vec<f32> = rgb.pixels().map(|p| 0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2])).collect();
    if w == 0 || h == 0 {
        return Pdq { hash: Hash256::default(), quality: 0, rotations: [Hash256::default(); 3] };
    }
    jarosz(&mut luma, w, h);
    // Where the decimation samples a side of `dim` pixels (as Meta's reference does).
    let at = |k: usize, dim: usize| (((k as f32 + 0.5) * dim as f32 / SIDE as f32) as usize).min(dim - 1);
    // The same on a side the turn mirrors: the turned photo's sample `k`, in this photo's
    // pixels. A box filter of even width is not centred (it reaches one pixel further right),
    // so mirrored it sits one pixel over, two after the filter's two passes.
    let flip = |k: usize, dim: usize, win: usize| {
        let shift = if win > 1 && win.min(dim) % 2 == 0 { 2 } else { 0 };
        (dim - 1 - at(k, dim)).saturating_sub(shift)
    };
    let (wr, wc) = (window(w, SIDE), window(h, SIDE));
    let sample = |pick: &dyn Fn(usize, usize) -> (usize, usize)| {
        let mut small = [0f32; SIDE * SIDE];
        for i in 0..SIDE {
            for j in 0..SIDE {
                let (x, y) = pick(i, j);
                small[i * SIDE + j] = luma[y * w + x];
            }
        }
        small
    };
    let small = sample(&|i, j| (at(j, w), at(i, h)));
    let quality = quality(&small);
    // The turned photos' hashes, exactly as hashing the turned photo gives them: the filtered
    // image sampled where the turned photo's own decimation samples (its grid is not this
    // one's turned: it rounds down on its own axes, and the filter sits a pixel over), then
    // the DCT again. Reading the turns off the coefficients (flipping signs, as Meta's
    // dihedral hashes do) was up to 70 bits off on fine textures (docs/PERFORMANCE.md).
    let turned = [
        // 90° clockwise: the turned photo is h wide, w high; its (x', y') is (y', h−1−x').
        sample(&|i, j| (at(i, w), flip(j, h, wc))),
        sample(&|i, j| (flip(j, w, wr), flip(i, h, wc))),
        // 270°: its (x', y') is (w−1−y', x').
        sample(&|i, j| (flip(i, w, wr), at(j, h))),
    ];
    let hash = |a: &[f32; SIDE * SIDE]| bits(&low_dct(a, SIDE, 1, COEFFS));
    Pdq { hash: hash(&small), quality, rotations: turned.map(|t| hash(&t)) }
}

/// The window of the box filter for a side of `old` pixels brought to `new`.
fn window(old: usize, new: usize) -> usize {
    (old + 2 * new - 1) / (2 * new)
}

/// Two passes of box filters along the rows, then the columns.
fn jarosz(buf: &mut [f32], w: usize, h: usize) {
    let (wr, wc) = (window(w, SIDE), window(h, SIDE));
    let mut tmp = vec![0f32; buf.len()];
    let mut line_in = vec![0f32; w.max(h)];
    let mut line_out = vec![0f32; w.max(h)];
    for _ in 0..2 {
        for y in 0..h {
            box1d(&buf[y * w..(y + 1) * w], &mut tmp[y * w..(y + 1) * w], wr);
        }
        for x in 0..w {
            for y in 0..h {
                line_in[y] = tmp[y * w + x];
            }
            box1d(&line_in[..h], &mut line_out[..h], wc);
            for y in 0..h {
                buf[y * w + x] = line_out[y];
            }
        }
    }
}

/// A centred running mean of `window` samples (fewer at the ends).
fn box1d(input: &[f32], out: &mut [f32], window: usize) {
    let n = input.len();
    if window <= 1 || n == 0 {
        out.copy_from_slice(input);
        return;
    }
    let window = window.min(n);
    let half = (window + 2) / 2;
    let (mut sum, mut count, mut ri, mut li, mut oi) = (0f32, 0usize, 0usize, 0usize, 0usize);
    for _ in 0..half - 1 {
        sum += input[ri];
        count += 1;
        ri += 1;
    }
    for _ in 0..window - half + 1 {
        sum += input[ri];
        count += 1;
        ri += 1;
        out[oi] = sum / count as f32;
        oi += 1;
    }
    for _ in 0..n - window {
        sum += input[ri] - input[li];
        ri += 1;
        li += 1;
        out[oi] = sum / count as f32;
        oi += 1;
    }
    while oi < n {
        sum -= input[li];
        li += 1;
        count -= 1;
        out[oi] = sum / count.max(1) as f32;
        oi += 1;
    }
}

/// The sum of the 64×64 image's neighbour differences, scaled to 0–100.
fn quality(a: &[f32; SIDE * SIDE]) -> u8 {
    let mut sum: i64 = 0;
    for i in 0..SIDE - 1 {
        for j in 0..SIDE {
            sum += (((a[i * SIDE + j] - a[(i + 1) * SIDE + j]) * 100.0 / 255.0) as i64).abs();
        }
    }
    for i in 0..SIDE {
        for j in 0..SIDE - 1 {
            sum += (((a[i * SIDE + j] - a[i * SIDE + j + 1]) * 100.0 / 255.0) as i64).abs();
        }
    }
    (sum / 90).min(100) as u8
}

/// The 2-D DCT-II coefficients of a `side`×`side` image (row-major) for the `n` frequencies
/// from `first` in each direction, `n`×`n` row-major: PDQ takes 1–16 of 64, the pHash
/// ([`crate::phash`]) 0–7 of 32.
pub(crate) fn low_dct(a: &[f32], side: usize, first: usize, n: usize) -> Vec<f32> {
    let scale = (2.0 / side as f64).sqrt();
    let mut d = vec![0f32; n * side];
    for i in 0..n {
        for j in 0..side {
            let angle = std::f64::consts::PI / 2.0 / side as f64 * (i + first) as f64 * (2 * j + 1) as f64;
            d[i * side + j] = (scale * angle.cos()) as f32;
        }
    }
    // T = D · A (n×side), B = T · Dᵀ (n×n).
    let mut t = vec![0f32; n * side];
    for i in 0..n {
        for k in 0..side {
            let dik = d[i * side + k];
            for j in 0..side {
                t[i * side + j] += dik * a[k * side + j];
            }
        }
    }
    let mut b = vec![0f32; n * n];
    for i in 0..n {
        for j in 0..n {
            b[i * n + j] = (0..side).map(|k| t[i * side + k] * d[j * side + k]).sum();
        }
    }
    b
}

/// One bit per coefficient: set where it is above the median (bit `i·16 + j`, word by word).
fn bits(b: &[f32]) -> Hash256 {
    let mut sorted = b.to_vec();
    sorted.sort_unstable_by(f32::total_cmp);
    let median = (sorted[127] + sorted[128]) / 2.0;
    let mut words = [0u64; 4];
    for (k, v) in b.iter().enumerate() {
        if *v > median {
            words[k / 64] |= 1 << (k % 64);
        }
    }
    Hash256(words)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{imageops, Rgb, RgbImage};

    /// A scene with structure at many scales, different for each seed.
    fn scene(seed: u32, w: u32, h: u32) -> DynamicImage {
        let mut img = RgbImage::new(w, h);
        let mut s = seed.wrapping_mul(2_654_435_761).max(1);
        let blobs: Vec<(f32, f32, f32, u8)> = (0..12)
            .map(|_| {
                let mut next = || {
                    s ^= s << 13;
                    s ^= s >> 17;
                    s ^= s << 5;
                    s
                };
                ((next() % w) as f32, (next() % h) as f32, (next() % (w / 4) + 20) as f32, (next() % 200) as u8)
            })
            .collect();
        for (x, y, p) in img.enumerate_pixels_mut() {
            let mut v = 40.0 + 60.0 * (x as f32 / w as f32);
            for (bx, by, r, tone) in &blobs {
                if (x as f32 - bx).hypot(y as f32 - by) < *r {
                    v = f32::from(*tone) + 30.0;
                }
            }
            let v = v.clamp(0.0, 255.0) as u8;
            *p = Rgb([v, v.saturating_add(10), v.saturating_sub(10)]);
        }
        DynamicImage::ImageRgb8(img)
    }

    fn jpeg(img: &DynamicImage, q: u8) -> DynamicImage {
        let mut out = vec![];
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, q).encode_image(&img.to_rgb8()).unwrap();
        image::load_from_memory(&out).unwrap()
    }

    #[test]
    fn a_recompressed_resized_or_relit_copy_matches_and_another_scene_does_not() {
        let original = scene(1, 1600, 1200);
        let h = pdq(&original);
        assert!(h.quality > QUALITY_GATE, "quality {}", h.quality);
        let q30_half = jpeg(&original.resize(800, 600, imageops::FilterType::Triangle), 30);
        let brighter = DynamicImage::ImageRgb8(imageops::brighten(&original.to_rgb8(), 30));
        for (what, copy) in [("JPEG q50", jpeg(&original, 50)), ("half size, q30", q30_half), ("brighter", brighter)] {
            let d = pdq(&copy).hash.distance(&h.hash);
            assert!(d <= MATCH_DISTANCE, "{what}: {d} bits");
        }
        for seed in 2..6 {
            let d = pdq(&scene(seed, 1600, 1200)).hash.distance(&h.hash);
            assert!(d > 2 * MATCH_DISTANCE, "scene {seed}: only {d} bits away");
        }
    }

    #[test]
    fn a_turned_copy_matches_through_the_rotations() {
        let original = scene(7, 1200, 900);
        let h = pdq(&original);
        for (what, turned) in [("90°", original.rotate90()), ("180°", original.rotate180()), ("270°", original.rotate270())] {
            let t = pdq(&turned).hash;
            assert!(h.hash.distance(&t) > MATCH_DISTANCE, "{what}: the plain hash should not match");
            assert_eq!(h.distance_any_turn(&t), 0, "{what}: the turned photo's own hash, exactly");
        }
    }

    /// A fine repeating pattern (bricks a few pixels high, as a photo of a wall has) turned:
    /// the turned photo samples its own grid, which the turns must follow to the pixel.
    #[test]
    fn a_turned_fine_texture_matches_through_the_rotations() {
        let bricks = DynamicImage::ImageRgb8(RgbImage::from_fn(512, 384, |x, y| {
            let row = y / 7;
            let mortar = y % 7 == 0 || (x + row % 2 * 11) % 22 == 0;
            let v = if mortar { 200 } else { 90 + ((x * 7 + y * 13) % 23) as u8 + (row % 3 * 9) as u8 };
            Rgb([v, v / 2 + 40, v / 3 + 30])
        }));
        let h = pdq(&bricks);
        for (what, turned) in [("90°", bricks.rotate90()), ("180°", bricks.rotate180()), ("270°", bricks.rotate270())] {
            let d = h.distance_any_turn(&pdq(&turned).hash);
            assert_eq!(d, 0, "{what}: {d} bits through the rotations (reading the turns off the coefficients: 70 at 90°)");
        }
    }

    #[test]
    fn a_blank_photo_has_no_quality() {
        let blank = DynamicImage::ImageRgb8(RgbImage::from_pixel(1600, 1200, Rgb([180, 180, 180])));
        assert_eq!(pdq(&blank).quality, 0);
    }

    #[test]
    fn hashes_read_back_from_hex() {
        let h = pdq(&scene(3, 640, 480)).hash;
        assert_eq!(Hash256::from_hex(&h.to_hex()), Some(h));
        assert_eq!(Hash256::from_hex("xyz"), None);
    }

    #[test]
    fn the_box_filter_keeps_a_constant_and_averages_a_step() {
        let mut out = [0f32; 10];
        box1d(&[5.0; 10], &mut out, 3);
        assert!(out.iter().all(|v| (v - 5.0).abs() < 1e-5), "{out:?}");
        let step: Vec<f32> = (0..10).map(|i| if i < 5 { 0.0 } else { 9.0 }).collect();
        box1d(&step, &mut out, 3);
        assert!((out[4] - 3.0).abs() < 1e-5 && (out[5] - 6.0).abs() < 1e-5, "{out:?}");
    }
}

#[cfg(test)]
mod meta_reference {
    use super::*;
    use image::{Rgb, RgbImage};

    /// A generated image from integer arithmetic only, so that the same pixels are made here
    /// and in the script that asked Meta's implementation for their hashes (numpy, the same
    /// formulas).
    fn scene(k: i64, w: u32, h: u32) -> DynamicImage {
        DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, y| {
            let (x, y) = (i64::from(x), i64::from(y));
            let r = ((x * x * (k + 1) + 3 * y * y + x * y * k) >> 6) & 0xFF;
            let g = (x * 7 + y * 13 + ((x / 16) ^ (y / 16)) * 40 * (k + 1)) & 0xFF;
            let b = ((((x / (9 + k)) + (y / 11)) % 2) * 180 + ((x + y) & 63)) & 0xFF;
            Rgb([r as u8, g as u8, b as u8])
        }))
    }

    /// Hashes Meta's C++ PDQ (pdqhash 0.2.8, `pdqhash.compute` on the RGB array) gave for
    /// these images. PDQ's rule: on the same pixels an implementation reproduces the reference
    /// hash (and stays within 10 bits where JPEG decoders differ); these are the same pixels.
    #[test]
    fn agrees_with_meta_on_the_same_pixels() {
        let meta = [
            (640, 480, "5f2c0fff5facdf826f7e7f80ef2c6f79f000fd00f040ec007ea06c80f844e640"),
            (500, 700, "bd007fa8bd20ff808120287cfed7ff80ffd2a868fed5b804fcd58a80ffa0b800"),
            (1024, 768, "fa2fff72edd8f980275a2f90fa072e65af0dd00daf6d4d5250207a12d0d07898"),
        ];
        for (k, (w, h, hex)) in meta.into_iter().enumerate() {
            let p = pdq(&scene(k as i64, w, h));
            let d = p.hash.distance(&Hash256::from_hex(hex).unwrap());
            assert_eq!(p.quality, 100, "image {k}");
            assert_eq!(d, 0, "image {k} ({w}x{h}): {} is {d} bits from Meta's {hex}", p.hash.to_hex());
        }
    }
}

#[cfg(test)]
mod demo_photos {
    /// The sandbox's and the demo's generated photos must not look reused: photos of the same
    /// step on other drops, or of another variant, are far apart.
    #[test]
    fn generated_photos_of_the_same_step_do_not_match() {
        let load = |n: &str, v: u32| image::load_from_memory(&crate::media::demo_photo(n, 3, "Cable entry outside", v)).unwrap();
        let a = super::pdq(&load("DR10000001", 0));
        for (n, v) in [("DR10000002", 0), ("DR10000001", 1), ("DR10000003", 0), ("SANDBOX", 77), ("SANDBOX", 78)] {
            let d = a.distance_any_turn(&super::pdq(&load(n, v)).hash);
            assert!(d > 2 * super::MATCH_DISTANCE, "{n} variant {v}: only {d} bits away");
        }
        assert!(a.quality > super::QUALITY_GATE, "quality {}", a.quality);
    }
}
