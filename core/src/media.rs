//! Content-addressed media under the data directory: `media/ab/<sha256>` for originals and
//! `thumbs/ab/<sha256>-<size>.jpg` for dashboard thumbnails, generated once and cached. Only a
//! 64-character lower-case hex digest ever becomes part of a path.

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Rgb, RgbImage};
use sha2::{Digest, Sha256};
use std::io::Cursor;
use std::path::{Path, PathBuf};

use crate::error::{CoreError, CoreResult, InputError};
use crate::pdq::{self, Pdq};
use crate::photo_checks::{self, Measures};

/// The longest side of a thumbnail, in pixels.
/// Thumbnails are shown at 160×120 CSS pixels; 240 px serves 1.5× screens and keeps a drop
/// page with 12 photos light.
pub const THUMB_MAX: u32 = 240;
const THUMB_QUALITY: u8 = 65;

#[derive(Debug, Clone)]
pub struct MediaStore {
    root: PathBuf,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StoredMedia {
    pub sha256: String,
    pub mime_type: String,
    pub size_bytes: i64,
    pub width: i64,
    pub height: i64,
    /// The usable-photo measures of a photo (none for other files, or for a photo whose
    /// header reads but whose pixels do not decode).
    pub measures: Option<Measures>,
    /// Its PDQ hash (with the turned ones), taken with the measures.
    pub pdq: Option<Pdq>,
    /// Its pHash (with the turned ones), for "possibly reused" hints ([`crate::phash`]).
    pub phash: Option<crate::phash::PHash>,
    /// Stored photos that look the same or alike, found before it is filed
    /// ([`crate::store::Store::similar_photos`]).
    pub similar: crate::store::Similar,
}

fn checked_sha(sha: &str) -> Result<&str, InputError> {
    if sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        Ok(sha)
    } else {
        Err(InputError::new("invalid_media_id", "not a media digest"))
    }
}

impl MediaStore {
    pub fn new(data_dir: &Path) -> Self {
        Self { root: data_dir.to_path_buf() }
    }

    pub fn original_path(&self, sha: &str) -> Result<PathBuf, InputError> {
        let sha = checked_sha(sha)?;
        Ok(self.root.join("media").join(&sha[..2]).join(sha))
    }

    fn thumb_path(&self, sha: &str, max: u32) -> Result<PathBuf, InputError> {
        let sha = checked_sha(sha)?;
        Ok(self.root.join("thumbs").join(&sha[..2]).join(format!("{sha}-{max}.jpg")))
    }

    /// Stores any file (an attachment that is not a checklist photo) by digest. The content
    /// type is the provider's, reduced to a safe `type/subtype`; nothing of it reaches a path.
    pub async fn store_file(&self, bytes: Vec<u8>, content_type: &str) -> CoreResult<StoredMedia> {
        let mime_type = safe_content_type(content_type).unwrap_or_else(|| "application/octet-stream".to_string());
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let path = self.original_path(&sha256)?;
        let size_bytes = bytes.len() as i64;
        tokio::task::spawn_blocking(move || if path.exists() { Ok(()) } else { write_atomically(&path, &bytes) })
            .await
            .map_err(|e| CoreError::Internal(e.to_string()))??;
        Ok(StoredMedia {
            sha256,
            mime_type,
            size_bytes,
            width: 0,
            height: 0,
            measures: None,
            pdq: None,
            phash: None,
            similar: Default::default(),
        })
    }

    /// Stores an image (JPEG or PNG), returning its digest and measurements. Idempotent:
    /// the same bytes land in the same file once.
    pub async fn store_image(&self, bytes: Vec<u8>) -> CoreResult<StoredMedia> {
        let root = self.clone();
        tokio::task::spawn_blocking(move || root.store_image_blocking(&bytes)).await.map_err(|e| CoreError::Internal(e.to_string()))?
    }

    fn store_image_blocking(&self, bytes: &[u8]) -> CoreResult<StoredMedia> {
        let reader = ImageReader::new(Cursor::new(bytes)).with_guessed_format().map_err(|e| CoreError::Internal(e.to_string()))?;
        let mime_type = match reader.format() {
            Some(ImageFormat::Jpeg) => "image/jpeg",
            Some(ImageFormat::Png) => "image/png",
            _ => return Err(InputError::new("unsupported_media", "only JPEG and PNG photos are accepted").into()),
        };
        let unreadable = |e: image::ImageError| InputError::new("invalid_image", format!("the image could not be read: {e}"));
        let mut decoder = reader.into_decoder().map_err(unreadable)?;
        let (w, h) = decoder.dimensions();
        // Measured upright, as the reviewer sees it; a photo whose pixels do not decode is
        // still kept (its header read), only not measured.
        let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
        let (measures, pdq, phash) = match DynamicImage::from_decoder(decoder) {
            Ok(mut img) => {
                img.apply_orientation(orientation);
                let hash = pdq::pdq(&img);
                let m = Measures { pdq_quality: Some(hash.quality), ..photo_checks::measure(&img) };
                (Some(m), Some(hash), Some(crate::phash::phash(&img)))
            }
            Err(e) => {
                tracing::warn!(error = %e, "a photo's pixels could not be decoded: filed without its checks");
                (None, None, None)
            }
        };
        let sha256 = hex::encode(Sha256::digest(bytes));
        let path = self.original_path(&sha256)?;
        if !path.exists() {
            write_atomically(&path, bytes)?;
        }
        Ok(StoredMedia {
            sha256,
            mime_type: mime_type.into(),
            size_bytes: bytes.len() as i64,
            width: i64::from(w),
            height: i64::from(h),
            measures,
            pdq,
            phash,
            similar: Default::default(),
        })
    }

    /// The thumbnail's path, generating it on first use.
    pub async fn thumbnail(&self, sha: &str) -> CoreResult<PathBuf> {
        self.resized(sha, THUMB_MAX).await
    }

    /// A JPEG copy at most `max` pixels on its long side (kept beside the thumbnails), made on
    /// first use: the dashboard's thumbnails, the evidence pack's photos.
    pub async fn resized(&self, sha: &str, max: u32) -> CoreResult<PathBuf> {
        let thumb = self.thumb_path(sha, max)?;
        if thumb.exists() {
            return Ok(thumb);
        }
        let original = self.original_path(sha)?;
        tokio::task::spawn_blocking(move || -> CoreResult<PathBuf> {
            let img = ImageReader::open(&original)
                .map_err(|_| CoreError::not_found("media_not_found", "the original photo"))?
                .with_guessed_format()
                .map_err(|e| CoreError::Internal(e.to_string()))?
                .decode()
                .map_err(|e| CoreError::Internal(format!("decoding {}: {e}", original.display())))?;
            let small = if img.width().max(img.height()) > max { img.thumbnail(max, max) } else { img }.to_rgb8();
            let mut out = Vec::new();
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, THUMB_QUALITY)
                .encode_image(&small)
                .map_err(|e| CoreError::Internal(e.to_string()))?;
            write_atomically(&thumb, &out)?;
            Ok(thumb)
        })
        .await
        .map_err(|e| CoreError::Internal(e.to_string()))?
    }
}

/// A content type from outside reduced to a plain lower-case `type/subtype`, or `None` when it
/// is anything else (parameters, odd characters, too long).
pub fn safe_content_type(content_type: &str) -> Option<String> {
    let ct = content_type.trim().to_ascii_lowercase();
    let ok = ct.len() <= 100
        && ct.split_once('/').is_some_and(|(a, b)| !a.is_empty() && !b.is_empty())
        && ct.chars().all(|c| c.is_ascii_alphanumeric() || "/.+-".contains(c));
    ok.then_some(ct)
}

/// The photo type the bytes themselves show (JPEG or PNG by their signature), whatever a
/// URL, a header or the database says.
pub fn sniff_photo(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else {
        None
    }
}

/// Write to a temporary sibling, fsync, then rename: a crash never leaves a torn file.
fn write_atomically(path: &Path, bytes: &[u8]) -> CoreResult<()> {
    use std::io::Write;
    let dir = path.parent().ok_or_else(|| CoreError::Internal("media path has no parent".into()))?;
    std::fs::create_dir_all(dir).map_err(|e| CoreError::Internal(format!("creating {}: {e}", dir.display())))?;
    let tmp = dir.join(format!(".tmp-{}-{}", std::process::id(), rand::random::<u64>()));
    let mut f = std::fs::File::create(&tmp).map_err(|e| CoreError::Internal(format!("writing {}: {e}", tmp.display())))?;
    f.write_all(bytes).and_then(|_| f.sync_all()).map_err(|e| CoreError::Internal(e.to_string()))?;
    std::fs::rename(&tmp, path).map_err(|e| CoreError::Internal(e.to_string()))?;
    Ok(())
}

/// A generated stand-in photo for the demo: a coloured frame with the drop number, step
/// number and step name drawn in (8x8 bitmap glyphs, scaled). 1280×960, so it passes the
/// usable-photo checks as a phone's photo would (a photo under 1200 px is "small").
pub fn demo_photo(drop_number: &str, step_no: i64, step_name: &str, variant: u32) -> Vec<u8> {
    const K: u32 = 2;
    let (w, h) = (640 * K, 480 * K);
    let hue = ((step_no as u32).wrapping_mul(29).wrapping_add(variant.wrapping_mul(97)) % 360) as f32;
    let (bg, fg) = (hsl(hue, 0.45, 0.55), hsl(hue, 0.6, 0.18));
    let mut img = RgbImage::from_pixel(w, h, bg);
    // Soft diagonal shading so the JPEG looks like a photo, not a flat card (the wave along
    // x computed once per column).
    let wave: Vec<i32> = (0..w).map(|x| ((x / K) as f32 / 37.0).sin() * 6.0).map(|v| v as i32).collect();
    for (x, y, px) in img.enumerate_pixels_mut() {
        let shade = ((x / K + y / K) % 97) as i32 / 12 - 4 + wave[x as usize];
        for c in px.0.iter_mut() {
            *c = (*c as i32 + shade).clamp(0, 255) as u8;
        }
    }
    // Shapes placed by the photo's own numbers: two photos of the same step on different drops
    // (or sent again) differ in layout, as two real photos do, not only in their text.
    let mut seed =
        drop_number.bytes().fold(0x9e37_79b9u32 ^ variant.rotate_left(7) ^ (step_no as u32).wrapping_mul(0x85eb_ca6b), |a, b| {
            (a ^ u32::from(b)).wrapping_mul(0x0100_0193)
        });
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed
    };
    for _ in 0..7 {
        let (x0, y0) = (next() % w, next() % h);
        let (bw, bh) = (w / 8 + next() % (w / 3), h / 8 + next() % (h / 3));
        let tone = hsl((hue + (next() % 120) as f32) % 360.0, 0.5, 0.25 + (next() % 50) as f32 / 100.0);
        for y in y0..(y0 + bh).min(h) {
            for x in x0..(x0 + bw).min(w) {
                img.put_pixel(x, y, tone);
            }
        }
    }
    for t in 0..14 * K {
        for x in 0..w {
            img.put_pixel(x, t, fg);
            img.put_pixel(x, h - 1 - t, fg);
        }
        for y in 0..h {
            img.put_pixel(t, y, fg);
            img.put_pixel(w - 1 - t, y, fg);
        }
    }
    draw_text(&mut img, 40 * K, 50 * K, 6 * K, &format!("STEP {step_no}"), fg);
    // A frame number, as a camera writes one: photos of other variants always differ (the
    // colour alone repeats every 360 variants).
    draw_text(&mut img, w - 240 * K, 24 * K, 2 * K, &format!("IMG {variant}"), fg);
    let mut y = 140 * K;
    for line in wrap(&step_name.to_uppercase(), 24) {
        draw_text(&mut img, 40 * K, y, 3 * K, &line, fg);
        y += 34 * K;
    }
    draw_text(&mut img, 40 * K, h - 90 * K, 5 * K, drop_number, Rgb([255, 255, 255]));
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80)
        .encode_image(&img)
        .expect("encoding an in-memory RGB image cannot fail");
    out
}

/// A photo made darker (each channel divided by `by`) or blurred (Gaussian, `sigma` px) and
/// encoded again: the sandbox's "too dark" and "blurred" photos, and the tests'.
pub fn spoiled_photo(jpeg: &[u8], darken_by: u8, blur_sigma: f32) -> CoreResult<Vec<u8>> {
    let img = image::load_from_memory(jpeg).map_err(|e| CoreError::Internal(format!("decoding a generated photo: {e}")))?;
    let mut rgb = img.to_rgb8();
    if darken_by > 1 {
        rgb.pixels_mut().for_each(|p| p.0.iter_mut().for_each(|c| *c /= darken_by));
    }
    if blur_sigma > 0.0 {
        rgb = image::imageops::blur(&rgb, blur_sigma);
    }
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80)
        .encode_image(&rgb)
        .map_err(|e| CoreError::Internal(format!("encoding a generated photo: {e}")))?;
    Ok(out)
}

fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in text.split_whitespace() {
        let last = lines.last_mut().expect("lines starts non-empty");
        if !last.is_empty() && last.len() + 1 + word.len() > width {
            lines.push(word.to_string());
        } else {
            if !last.is_empty() {
                last.push(' ');
            }
            last.push_str(word);
        }
    }
    lines
}

fn draw_text(img: &mut RgbImage, x0: u32, y0: u32, scale: u32, text: &str, color: Rgb<u8>) {
    use font8x8::UnicodeFonts;
    for (i, ch) in text.chars().enumerate() {
        let glyph = font8x8::BASIC_FONTS.get(ch).unwrap_or([0; 8]);
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..8 {
                if bits & (1 << col) != 0 {
                    for dy in 0..scale {
                        for dx in 0..scale {
                            let x = x0 + (i as u32 * 8 + col) * scale + dx;
                            let y = y0 + row as u32 * scale + dy;
                            if x < img.width() && y < img.height() {
                                img.put_pixel(x, y, color);
                            }
                        }
                    }
                }
            }
        }
    }
}

fn hsl(h: f32, s: f32, l: f32) -> Rgb<u8> {
    let c = (1.0 - (2.0 * l - 1.0).abs()) * s;
    let x = c * (1.0 - ((h / 60.0) % 2.0 - 1.0).abs());
    let m = l - c / 2.0;
    let (r, g, b) = match h as u32 {
        0..=59 => (c, x, 0.0),
        60..=119 => (x, c, 0.0),
        120..=179 => (0.0, c, x),
        180..=239 => (0.0, x, c),
        240..=299 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    Rgb([((r + m) * 255.0) as u8, ((g + m) * 255.0) as u8, ((b + m) * 255.0) as u8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn images_are_stored_by_digest_with_cached_thumbnails() {
        let dir = tempfile::tempdir().unwrap();
        let store = MediaStore::new(dir.path());
        let jpeg = demo_photo("DR12345678", 3, "Cable entry outside", 0);
        let a = store.store_image(jpeg.clone()).await.unwrap();
        let b = store.store_image(jpeg).await.unwrap();
        assert_eq!(a, b);
        assert_eq!((a.width, a.height, a.mime_type.as_str()), (1280, 960, "image/jpeg"));
        let thumb = store.thumbnail(&a.sha256).await.unwrap();
        let (tw, th) = image::image_dimensions(&thumb).unwrap();
        assert_eq!((tw, th), (THUMB_MAX, THUMB_MAX * 3 / 4), "a 4:3 photo keeps its shape");
        assert!(std::fs::metadata(&thumb).unwrap().len() < 40_000);
    }

    #[tokio::test]
    async fn non_images_and_path_tricks_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = MediaStore::new(dir.path());
        let err = store.store_image(b"%PDF-1.4 not an image".to_vec()).await.unwrap_err();
        assert_eq!(err.code(), "unsupported_media");
        assert!(store.original_path("../../etc/passwd").is_err());
        assert!(store.original_path(&"A".repeat(64)).is_err());
        assert!(store.thumbnail(&"0".repeat(64)).await.is_err());
    }
}
