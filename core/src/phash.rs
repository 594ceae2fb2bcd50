//! The crop-tolerant second tier of reuse detection: a 64-bit pHash (greyscale → 32×32 by
//! area averaging → 2-D DCT → the 8×8 lowest frequencies, the constant one included → one bit
//! per coefficient, set where it is above their median). It survives a 5 % crop or a small
//! turn that PDQ does not, but it also brings different shots of the same kind of scene
//! together (PHOTO-INTEL.md: 4.6 % of such pairs within 10 bits), so it only ever gives the
//! reviewer a "possibly reused" hint, never a flag.

use image::DynamicImage;

/// The version of the hash as computed here (stored with every hash).
pub const PHASH_VERSION: i64 = 1;

/// Hamming distance at or under which a pHash gives a "possibly reused" hint: 10 of 64, where
/// PHOTO-INTEL.md measured no false match between unrelated photographs and 4.6 % between other
/// shots of the same scene (16 would find twice the crops at five times the false hints).
pub const HINT_DISTANCE: u32 = 10;

const SIDE: usize = 32;
const LOW: usize = 8;

/// A photo's pHash upright and turned 90°, 180° and 270° (the 32×32 image turned, then its DCT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PHash {
    pub hash: u64,
    pub rotations: [u64; 3],
}

impl PHash {
    /// The smallest distance from `other` to this photo in any of its four turns.
    pub fn distance_any_turn(&self, other: u64) -> u32 {
        std::iter::once(self.hash).chain(self.rotations).map(|h| (h ^ other).count_ones()).min().unwrap_or(64)
    }
}

/// The pHash of a photo (as decoded, upright).
pub fn phash(img: &DynamicImage) -> PHash {
    let px = area_luma(img);
    let at = |pick: &dyn Fn(usize, usize) -> usize| -> [f32; SIDE * SIDE] {
        let mut a = [0f32; SIDE * SIDE];
        for y in 0..SIDE {
            for x in 0..SIDE {
                a[y * SIDE + x] = px[pick(x, y)];
            }
        }
        a
    };
    let n = SIDE - 1;
    let upright = at(&|x, y| y * SIDE + x);
    // Turned clockwise by 90°: the turned image's (x, y) is the original's (y, n − x).
    let turns = [at(&|x, y| (n - x) * SIDE + y), at(&|x, y| (n - y) * SIDE + (n - x)), at(&|x, y| x * SIDE + (n - y))];
    PHash { hash: bits(&upright), rotations: turns.map(|t| bits(&t)) }
}

/// The photo's luma (BT.601) averaged over each cell of a 32×32 grid, in one pass over the
/// pixels: a third of the time of converting to greyscale and resizing (a JPEG decodes to RGB,
/// read in place).
fn area_luma(img: &DynamicImage) -> Vec<f32> {
    let owned;
    let rgb = match img.as_rgb8() {
        Some(rgb) => rgb,
        None => {
            owned = img.to_rgb8();
            &owned
        }
    };
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    if w == 0 || h == 0 {
        return vec![0.0; SIDE * SIDE];
    }
    let mut sums = vec![0u64; SIDE * SIDE];
    let mut counts = vec![0u32; SIDE * SIDE];
    let col: Vec<usize> = (0..w).map(|x| x * SIDE / w).collect();
    for (y, row) in rgb.as_raw().chunks_exact(w * 3).enumerate() {
        let base = y * SIDE / h * SIDE;
        for (x, p) in row.chunks_exact(3).enumerate() {
            let cell = base + col[x];
            sums[cell] += u64::from(299 * u32::from(p[0]) + 587 * u32::from(p[1]) + 114 * u32::from(p[2]));
            counts[cell] += 1;
        }
    }
    // A photo narrower or lower than the grid leaves cells empty: each takes the value of the
    // cell its first pixel would be in.
    let cell_at = |cy: usize, cx: usize| {
        let (y, x) = ((cy * h).div_ceil(SIDE).min(h - 1), (cx * w).div_ceil(SIDE).min(w - 1));
        y * SIDE / h * SIDE + x * SIDE / w
    };
    (0..SIDE * SIDE)
        .map(|c| {
            let c = if counts[c] > 0 { c } else { cell_at(c / SIDE, c % SIDE) };
            sums[c] as f32 / 1000.0 / counts[c].max(1) as f32
        })
        .collect()
}

/// The 8×8 lowest DCT coefficients of a 32×32 image, one bit each where above their median.
fn bits(a: &[f32; SIDE * SIDE]) -> u64 {
    let b = crate::pdq::low_dct(a, SIDE, 0, LOW);
    let mut sorted = b.clone();
    sorted.sort_unstable_by(f32::total_cmp);
    let median = (sorted[31] + sorted[32]) / 2.0;
    b.iter().enumerate().filter(|(_, v)| **v > median).fold(0u64, |h, (k, _)| h | 1 << k)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A generated photograph of shapes over a gradient, different for each seed.
    fn scene(seed: u32) -> DynamicImage {
        image::load_from_memory(&crate::testing::scene_photo(seed)).expect("decodes")
    }

    #[test]
    fn a_cropped_copy_is_near_and_another_scene_is_not() {
        let photo = scene(7);
        let h = phash(&photo);
        assert_eq!(h.hash.count_ones(), 32, "half the bits are above the median");
        let cropped = photo.crop_imm(80, 60, 1440, 1080);
        let d = h.distance_any_turn(phash(&cropped).hash);
        assert!(d <= HINT_DISTANCE, "a 5 % crop: {d} bits");
        for seed in 8..14 {
            let d = h.distance_any_turn(phash(&scene(seed)).hash);
            assert!(d > HINT_DISTANCE, "scene {seed}: {d} bits");
        }
    }

    #[test]
    fn a_photo_smaller_than_the_grid_is_hashed_without_empty_cells() {
        let tiny = DynamicImage::ImageRgb8(image::RgbImage::from_fn(5, 3, |x, y| image::Rgb([(x * 50) as u8, (y * 80) as u8, 0])));
        let cells = area_luma(&tiny);
        assert_eq!(cells.len(), SIDE * SIDE);
        let lumas: Vec<f32> = tiny.to_rgb8().pixels().map(|p| (299.0 * f32::from(p[0]) + 587.0 * f32::from(p[1])) / 1000.0).collect();
        assert!(cells.iter().all(|v| lumas.iter().any(|l| (l - v).abs() < 1e-3)), "every cell holds a pixel's value: {cells:?}");
        assert_eq!(cells[SIDE * SIDE - 1], area_luma(&tiny.crop_imm(4, 2, 1, 1))[0], "the last cell is the last pixel");
        let _ = phash(&DynamicImage::ImageRgb8(image::RgbImage::new(0, 0)));
    }

    #[test]
    fn a_turned_copy_is_found_through_the_rotations() {
        let photo = scene(3);
        let h = phash(&photo);
        for turned in [photo.rotate90(), photo.rotate180(), photo.rotate270()] {
            let d = phash(&turned).distance_any_turn(h.hash);
            assert!(d <= 2, "{d} bits");
        }
    }
}
