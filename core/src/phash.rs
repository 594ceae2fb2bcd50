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
    let small = image::imageops::thumbnail(&img.to_luma8(), SIDE as u32, SIDE as u32);
    let px: Vec<f32> = small.as_raw().iter().map(|&v| f32::from(v)).collect();
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

/// The 8×8 lowest DCT coefficients of a 32×32 image, one bit each where above their median.
fn bits(a: &[f32; SIDE * SIDE]) -> u64 {
    let mut d = [0f32; LOW * SIDE];
    for (i, row) in d.chunks_mut(SIDE).enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            *v = (std::f64::consts::PI / (2 * SIDE) as f64 * (i * (2 * j + 1)) as f64).cos() as f32;
        }
    }
    // T = D · A (8×32), B = T · Dᵀ (8×8).
    let mut t = [0f32; LOW * SIDE];
    for i in 0..LOW {
        for k in 0..SIDE {
            let dik = d[i * SIDE + k];
            for j in 0..SIDE {
                t[i * SIDE + j] += dik * a[k * SIDE + j];
            }
        }
    }
    let mut b = [0f32; LOW * LOW];
    for i in 0..LOW {
        for j in 0..LOW {
            b[i * LOW + j] = (0..SIDE).map(|k| t[i * SIDE + k] * d[j * SIDE + k]).sum();
        }
    }
    let mut sorted = b;
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
    fn a_turned_copy_is_found_through_the_rotations() {
        let photo = scene(3);
        let h = phash(&photo);
        for turned in [photo.rotate90(), photo.rotate180(), photo.rotate270()] {
            let d = phash(&turned).distance_any_turn(h.hash);
            assert!(d <= 2, "{d} bits");
        }
    }
}
