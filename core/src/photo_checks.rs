//! Usable-photo checks: too small, too dark, over-exposed, blurred. Each is measured on a
//! fixed working size (greyscale, long side 640 px, each working pixel the average of the
//! pixels it covers), so a figure means the same for every photo whatever its resolution;
//! the size check reads the photo as received. Averaging, not a tent filter: on a
//! 1600×1200 photo the measures take about 29 ms instead of 78 (`bench_photo_checks`).
//!
//! The starting thresholds were measured on real photographs (sharp originals: Laplacian
//! variance p10 35, median 420, mean luma p10 68; a Gaussian blur of σ 1.5 brings the
//! variance to about 15, darkening to 25 % the luma to about 29, over-exposing ×2.2 puts 42 %
//! of the pixels at 245 or above; naturally blurred samples read 8–33). The blur flag is at
//! 30: under the sharp originals' p10 and over most natural blur; at 20 a third of the
//! busy photographs blurred with σ 2 in `scripts/eval-photos` (26–29) went unflagged, and no
//! untouched one there reads under 50. A plain subject (a white box on a white wall) reads low
//! on focus over the whole frame, so a photo is flagged as blurred only when its sharpest ninth
//! (a 3×3 grid) is low too. Screenshots skip focus and exposure.
//!
//! Too dark looks at the brightest 1 % too: an under-exposed photo is dark all over (darkened
//! to 25 %, every photograph in `scripts/eval-photos` keeps its brightest 1 % under 64), while a
//! dark scene with lit parts — a cabinet lit by the flash against the night, the night sky —
//! has its brightest 1 % well up (the Hubble deep field: mean 20, brightest 1 % at 167). Only
//! the first is flagged (a retake is asked for); the second is warned (the reviewer sees it).
//!
//! Featureless: PDQ's quality (the gradient sum of its 64×64 image, [`crate::pdq`]) under 50 of
//! 100 (a covered lens, a blank wall). Screenshots skip focus and exposure, not this.

use image::{DynamicImage, GrayImage};
use serde::{Deserialize, Serialize};

/// The long side every measure but the size is taken at.
pub const WORKING_SIZE: u32 = 640;

pub use crate::domain::{CheckKind, CheckResult};

/// The version of the measures (stored with each photo's): a change to how one is taken
/// bumps it, so stored figures are never compared with new ones unknowingly.
pub const MEASURE_VERSION: i64 = 1;

impl CheckKind {
    /// For people: the name a reviewer sees.
    pub fn label(self) -> &'static str {
        match self {
            CheckKind::Small => "Too small",
            CheckKind::Dark => "Too dark",
            CheckKind::Overexposed => "Over-exposed",
            CheckKind::Blurred => "Blurred",
            CheckKind::Featureless => "Featureless",
            CheckKind::Reused => "Reused",
            CheckKind::PossiblyReused => "Possibly reused",
            CheckKind::Vision => "Vision check",
        }
    }

    /// What the contractor is told about a flagged photo: the problem, then what to do
    /// before sending it again (the `photo_ack` template's `retakes`).
    pub fn retake_advice(self) -> (&'static str, &'static str) {
        match self {
            CheckKind::Small => ("too small", "take it with the camera (not a thumbnail or a forward)"),
            CheckKind::Dark => ("too dark", "switch on the light or use the flash"),
            CheckKind::Overexposed => ("too bright", "move out of direct light or switch off the flash"),
            CheckKind::Blurred => ("blurred", "hold the phone still and tap to focus"),
            CheckKind::Featureless => ("blank", "uncover the lens and point the camera at what the step asks for"),
            CheckKind::Reused => ("one we already have", "take a new photo on site"),
            // Never asked (a warning for the reviewer), but a reviewer's retake says the same.
            CheckKind::PossiblyReused => ("like one we already have", "take a new photo on site"),
            CheckKind::Vision => ("not what the step asks for", "check the step's description and take it again"),
        }
    }
}

/// One check's outcome with the value it measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    pub kind: CheckKind,
    pub result: CheckResult,
    /// The measure: the long side in pixels, the mean luma (0–255), the share of pixels at
    /// 250 or above (0–1), or the Laplacian variance of the whole frame.
    pub value: f64,
    /// For people: what was measured against what.
    pub detail: String,
}

/// Where each check flags and warns (per project; these are the defaults). A project's
/// overrides are stored as JSON holding any of these fields; the rest keep their defaults.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Thresholds {
    /// Long side in pixels below which a photo is flagged / warned.
    pub small_flag: u32,
    pub small_warn: u32,
    /// Mean luma below which a photo is flagged / warned.
    pub dark_flag: f64,
    pub dark_warn: f64,
    /// A photo under the dark flag level is flagged only when its brightest 1 % is under this
    /// luma too (else it is a dark scene with lit parts, and warned).
    pub dark_highlight: f64,
    /// Share of pixels at 250 or above from which a photo is flagged / warned.
    pub overexposed_flag: f64,
    pub overexposed_warn: f64,
    /// Laplacian variance of the frame below which a photo is flagged (when its sharpest
    /// tile is below `blur_tile_flag` too) / warned.
    pub blur_flag: f64,
    pub blur_tile_flag: f64,
    pub blur_warn: f64,
    /// PDQ quality (0–100) below which a photo is flagged / warned as featureless.
    pub featureless_flag: f64,
    pub featureless_warn: f64,
    /// The contractor's acknowledgment also asks again for a photo reused from another drop
    /// (off: only the reviewer sees the flag).
    pub ask_about_reuse: bool,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            small_flag: 800,
            small_warn: 1200,
            dark_flag: 45.0,
            dark_warn: 70.0,
            dark_highlight: 128.0,
            overexposed_flag: 0.25,
            overexposed_warn: 0.10,
            blur_flag: 30.0,
            blur_tile_flag: 60.0,
            blur_warn: 60.0,
            featureless_flag: 50.0,
            featureless_warn: 70.0,
            ask_about_reuse: false,
        }
    }
}

impl Thresholds {
    /// Refuses thresholds that cannot mean anything: out of range, or a flag level past its
    /// warning level.
    pub fn validate(&self) -> Result<(), crate::error::InputError> {
        let bad = |m: String| Err(crate::error::InputError::new("invalid_thresholds", m));
        let levels = [("too dark", self.dark_flag, self.dark_warn, 255.0), ("blurred", self.blur_flag, self.blur_warn, 1e6)];
        for (name, flag, warn, max) in levels {
            if !(0.0..=max).contains(&flag) || !(0.0..=max).contains(&warn) || flag > warn {
                return bad(format!("{name}: the levels must be between 0 and {max}, the flag level at most the warning level"));
            }
        }
        let shares = [(self.overexposed_flag, self.overexposed_warn)];
        if shares.iter().any(|&(f, w)| !(0.0..=1.0).contains(&f) || !(0.0..=1.0).contains(&w) || w > f) {
            return bad("over-exposed: the shares must be between 0 and 1, the warning share at most the flag share".into());
        }
        if !(0.0..=255.0).contains(&self.dark_highlight) {
            return bad("too dark: the brightest part's level must be between 0 and 255".into());
        }
        if !(0.0..=1e6).contains(&self.blur_tile_flag) {
            return bad("blurred: the sharpest part's level must be between 0 and 1000000".into());
        }
        if self.small_flag > self.small_warn || self.small_warn > 20_000 {
            return bad("too small: the flag size must be at most the warning size (at most 20000 px)".into());
        }
        Ok(())
    }
}

/// The measures the checks compare against their thresholds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measures {
    pub long_side: u32,
    pub mean_luma: f64,
    /// The luma of the brightest 1 % (the 99th percentile, 0–255); none for photos measured
    /// before it was taken (judged on the mean alone).
    pub highlight_luma: Option<f64>,
    pub bright_share: f64,
    pub laplacian_var: f64,
    /// The highest Laplacian variance of the nine tiles of a 3×3 grid.
    pub best_tile_var: f64,
    /// PDQ's quality, 0–100 (see [`crate::pdq`]), when the hash was taken.
    pub pdq_quality: Option<u8>,
}

/// Measures a photo (see the module's description of each measure).
pub fn measure(img: &DynamicImage) -> Measures {
    let long_side = img.width().max(img.height());
    let grey = working_grey(img);
    let (w, h) = (grey.width() as usize, grey.height() as usize);
    let px = grey.as_raw();
    let n = (w * h).max(1);
    let (mut sum, mut bright) = (0u64, 0usize);
    let mut histogram = [0usize; 256];
    for &v in px {
        sum += u64::from(v);
        bright += usize::from(v >= 250);
        histogram[usize::from(v)] += 1;
    }
    // The 99th percentile: the lowest luma with at most 1 % of the pixels above it.
    let (mut above, mut highlight) = (0usize, 0u8);
    for v in (0..=255u8).rev() {
        above += histogram[usize::from(v)];
        if above * 100 > n {
            highlight = v;
            break;
        }
    }
    // One pass of the Laplacian over the pixels with four neighbours, summed over the frame
    // and over each ninth of a 3×3 grid.
    let mut frame = Moments::default();
    let mut tiles = [Moments::default(); 9];
    for y in 1..h.saturating_sub(1) {
        let row = y * w;
        let ty = (y * 3 / h).min(2);
        for x in 1..w - 1 {
            let c = i64::from(px[row + x]);
            let l =
                4 * c - i64::from(px[row + x - 1]) - i64::from(px[row + x + 1]) - i64::from(px[row - w + x]) - i64::from(px[row + w + x]);
            frame.add(l);
            tiles[ty * 3 + (x * 3 / w).min(2)].add(l);
        }
    }
    let best_tile_var = tiles.iter().map(Moments::variance).fold(0.0, f64::max);
    Measures {
        long_side,
        mean_luma: sum as f64 / n as f64,
        highlight_luma: Some(f64::from(highlight)),
        bright_share: bright as f64 / n as f64,
        laplacian_var: frame.variance(),
        best_tile_var,
        pdq_quality: None,
    }
}

/// Count, sum and sum of squares, for a variance.
#[derive(Debug, Clone, Copy, Default)]
struct Moments {
    n: u64,
    sum: i64,
    sq: u64,
}

impl Moments {
    fn add(&mut self, v: i64) {
        self.n += 1;
        self.sum += v;
        self.sq += v.unsigned_abs() * v.unsigned_abs();
    }
    fn variance(&self) -> f64 {
        if self.n == 0 {
            return 0.0;
        }
        let mean = self.sum as f64 / self.n as f64;
        (self.sq as f64 / self.n as f64 - mean * mean).max(0.0)
    }
}

/// Runs every check on a photo; `screenshot` (a step whose photo is a screen capture) skips
/// focus and exposure.
pub fn check_photo(img: &DynamicImage, screenshot: bool, t: &Thresholds) -> Vec<Check> {
    judge(&measure(img), screenshot, t)
}

/// The checks' verdicts on measures already taken.
pub fn judge(m: &Measures, screenshot: bool, t: &Thresholds) -> Vec<Check> {
    let grade = |flag: bool, warn: bool| {
        if flag {
            CheckResult::Flag
        } else if warn {
            CheckResult::Warn
        } else {
            CheckResult::Pass
        }
    };
    let mut out = vec![Check {
        kind: CheckKind::Small,
        result: grade(m.long_side < t.small_flag, m.long_side < t.small_warn),
        value: f64::from(m.long_side),
        detail: format!("long side {} px (at least {} px)", m.long_side, t.small_warn),
    }];
    let featureless = m.pdq_quality.map(f64::from).map(|q| Check {
        kind: CheckKind::Featureless,
        result: grade(q < t.featureless_flag, q < t.featureless_warn),
        value: q,
        detail: format!("detail {q:.0} of 100 (at least {:.0})", t.featureless_warn),
    });
    if screenshot {
        out.extend(featureless);
        return out;
    }
    let lit_parts = m.highlight_luma.filter(|&h| h >= t.dark_highlight);
    out.push(Check {
        kind: CheckKind::Dark,
        result: grade(m.mean_luma < t.dark_flag && lit_parts.is_none(), m.mean_luma < t.dark_warn),
        value: m.mean_luma,
        detail: match lit_parts.filter(|_| m.mean_luma < t.dark_warn) {
            Some(h) => format!(
                "mean brightness {:.0} of 255 (at least {:.0}); its brightest 1 % at {h:.0}: a dark scene with lit parts",
                m.mean_luma, t.dark_warn
            ),
            None => format!("mean brightness {:.0} of 255 (at least {:.0})", m.mean_luma, t.dark_warn),
        },
    });
    out.push(Check {
        kind: CheckKind::Overexposed,
        result: grade(m.bright_share >= t.overexposed_flag, m.bright_share >= t.overexposed_warn),
        value: m.bright_share,
        detail: format!("{:.0} % of the photo is blown out (under {:.0} %)", m.bright_share * 100.0, t.overexposed_warn * 100.0),
    });
    let blur_flag = m.laplacian_var < t.blur_flag && m.best_tile_var < t.blur_tile_flag;
    out.push(Check {
        kind: CheckKind::Blurred,
        result: grade(blur_flag, m.laplacian_var < t.blur_warn),
        value: m.laplacian_var,
        detail: format!("sharpness {:.0}, sharpest part {:.0} (at least {:.0})", m.laplacian_var, m.best_tile_var, t.blur_warn),
    });
    out.extend(featureless);
    out
}

/// The photo in greyscale at the working size (a photo already smaller stays as it is):
/// greyscale first, so the resize works on one channel.
fn working_grey(img: &DynamicImage) -> GrayImage {
    let grey = img.to_luma8();
    let (w, h) = grey.dimensions();
    let long = w.max(h);
    if long <= WORKING_SIZE {
        return grey;
    }
    let scale = |v: u32| ((u64::from(v) * u64::from(WORKING_SIZE) + u64::from(long) / 2) / u64::from(long)).max(1) as u32;
    image::imageops::thumbnail(&grey, scale(w), scale(h))
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage};

    /// A busy scene: shapes of many sizes and greys over a gradient, with fine texture, the
    /// way a photo of equipment on a wall has edges at every scale.
    fn scene(w: u32, h: u32) -> DynamicImage {
        let mut img = RgbImage::new(w, h);
        let mut seed = 0x2545_f491_u32;
        for (x, y, p) in img.enumerate_pixels_mut() {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            let base = 60 + (x * 80 / w) + (y * 40 / h);
            let block = if ((x / 37) + (y / 23)) % 3 == 0 { 50 } else { 0 };
            let fine = if (x / 3 + y / 3) % 2 == 0 { 18 } else { 0 };
            let noise = seed % 12;
            let v = (base + block + fine + noise).min(255) as u8;
            *p = Rgb([v, v.saturating_sub(10), v.saturating_add(5)]);
        }
        DynamicImage::ImageRgb8(img)
    }

    fn result(checks: &[Check], kind: CheckKind) -> CheckResult {
        checks.iter().find(|c| c.kind == kind).map(|c| c.result).expect("checked")
    }

    #[test]
    fn a_sharp_well_lit_photo_passes_every_check() {
        let checks = check_photo(&scene(1600, 1200), false, &Thresholds::default());
        assert!(checks.iter().all(|c| c.result == CheckResult::Pass), "{checks:#?}");
    }

    #[test]
    fn a_blurred_copy_is_flagged_and_its_sharpness_reported() {
        let sharp = measure(&scene(1600, 1200));
        let blurred = DynamicImage::ImageRgb8(image::imageops::blur(&scene(1600, 1200).to_rgb8(), 6.0));
        let checks = check_photo(&blurred, false, &Thresholds::default());
        let b = checks.iter().find(|c| c.kind == CheckKind::Blurred).unwrap();
        assert_eq!(b.result, CheckResult::Flag, "{b:?} (sharp original: {sharp:?})");
        assert!(b.value < sharp.laplacian_var / 10.0, "{} vs {}", b.value, sharp.laplacian_var);
        // Blur changes neither the brightness nor the size.
        assert_eq!(result(&checks, CheckKind::Dark), CheckResult::Pass);
        assert_eq!(result(&checks, CheckKind::Small), CheckResult::Pass);
    }

    #[test]
    fn a_plain_frame_with_one_sharp_part_is_not_called_blurred() {
        // A white wall with a small sharp label in one corner: too little detail over the
        // whole frame to pass, plenty in the ninth that holds the label.
        let mut img = RgbImage::from_pixel(1600, 1200, Rgb([200, 200, 200]));
        for y in 100..200 {
            for x in 100..200 {
                let v = if (x / 8 + y / 8) % 2 == 0 { 150 } else { 200 };
                img.put_pixel(x, y, Rgb([v, v, v]));
            }
        }
        let m = measure(&DynamicImage::ImageRgb8(img));
        let t = Thresholds::default();
        assert!(m.laplacian_var < t.blur_flag && m.best_tile_var >= t.blur_tile_flag, "{m:?}");
        let checks = judge(&m, false, &Thresholds::default());
        assert_ne!(result(&checks, CheckKind::Blurred), CheckResult::Flag, "{m:?}");
    }

    #[test]
    fn darkened_and_blown_out_copies_are_flagged() {
        let t = Thresholds::default();
        let mut dark = scene(1600, 1200).to_rgb8();
        dark.pixels_mut().for_each(|p| p.0.iter_mut().for_each(|c| *c /= 4));
        let checks = check_photo(&DynamicImage::ImageRgb8(dark), false, &t);
        assert_eq!(result(&checks, CheckKind::Dark), CheckResult::Flag, "{checks:#?}");

        let mut bright = scene(1600, 1200).to_rgb8();
        bright.pixels_mut().for_each(|p| p.0.iter_mut().for_each(|c| *c = (f32::from(*c) * 2.2).min(255.0) as u8));
        let checks = check_photo(&DynamicImage::ImageRgb8(bright), false, &t);
        assert_eq!(result(&checks, CheckKind::Overexposed), CheckResult::Flag, "{checks:#?}");
        assert_eq!(result(&checks, CheckKind::Dark), CheckResult::Pass);
    }

    #[test]
    fn a_dark_scene_with_lit_parts_is_warned_and_its_underexposed_copy_flagged() {
        // A cabinet lit by the flash against the night: black all round, the lit part (6 % of
        // the frame) well exposed. Dark on average, but not under-exposed.
        let t = Thresholds::default();
        let mut night = RgbImage::from_pixel(1600, 1200, Rgb([8, 8, 10]));
        for y in 500..700 {
            for x in 700..1000 {
                let v = if (x / 6 + y / 6) % 2 == 0 { 230 } else { 150 };
                night.put_pixel(x, y, Rgb([v, v, v]));
            }
        }
        let m = measure(&DynamicImage::ImageRgb8(night.clone()));
        assert!(m.mean_luma < t.dark_flag, "{m:?}");
        assert!(m.highlight_luma.is_some_and(|h| h >= 150.0), "the brightest 1 % is the lit part: {m:?}");
        let checks = judge(&m, false, &t);
        let dark = checks.iter().find(|c| c.kind == CheckKind::Dark).unwrap();
        assert_eq!(dark.result, CheckResult::Warn, "{dark:?}");
        assert!(dark.detail.contains("a dark scene with lit parts"), "{}", dark.detail);

        // The same scene under-exposed (a quarter of the light): nothing is lit any more.
        night.pixels_mut().for_each(|p| p.0.iter_mut().for_each(|c| *c /= 4));
        let m = measure(&DynamicImage::ImageRgb8(night));
        assert!(m.highlight_luma.is_some_and(|h| h < t.dark_highlight), "{m:?}");
        assert_eq!(result(&judge(&m, false, &t), CheckKind::Dark), CheckResult::Flag);
        // Measured before the brightest 1 % was taken: judged on the mean alone.
        let old = Measures { highlight_luma: None, ..measure(&scene(1600, 1200)) };
        let old_dark = Measures { mean_luma: 20.0, ..old };
        assert_eq!(result(&judge(&old_dark, false, &t), CheckKind::Dark), CheckResult::Flag);
    }

    #[test]
    fn small_photos_are_flagged_or_warned_by_their_long_side() {
        let t = Thresholds::default();
        assert_eq!(result(&check_photo(&scene(600, 800), false, &t), CheckKind::Small), CheckResult::Warn);
        assert_eq!(result(&check_photo(&scene(640, 480), false, &t), CheckKind::Small), CheckResult::Flag);
        assert_eq!(result(&check_photo(&scene(1600, 1200), false, &t), CheckKind::Small), CheckResult::Pass);
    }

    #[test]
    fn a_screenshot_step_skips_focus_and_exposure() {
        let dark = DynamicImage::ImageRgb8(RgbImage::from_pixel(1600, 1200, Rgb([5, 5, 5])));
        let checks = check_photo(&dark, true, &Thresholds::default());
        assert_eq!(checks.iter().map(|c| c.kind).collect::<Vec<_>>(), vec![CheckKind::Small]);
        let checks = check_photo(&dark, false, &Thresholds::default());
        assert_eq!(result(&checks, CheckKind::Dark), CheckResult::Flag);
        assert_eq!(result(&checks, CheckKind::Blurred), CheckResult::Flag, "a uniform frame has no detail at all");
    }
}
