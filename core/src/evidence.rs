//! A drop's evidence pack (issue 15, item 3): one PDF a QA manager can hand to the network
//! owner — the drop, project, contractor, status, round and dates; per step the current photo
//! (earlier ones smaller), the verdict, reason, note, reviewer and time, each photo's received
//! time, SHA-256, PDQ hash (where measured) and check results; then the timeline.
//!
//! Written with `pdf-writer` (the PDF writer of the Typst project: small, no dependencies of
//! its own, complete enough for text and JPEG images) in-process. Text is set in the standard
//! Helvetica fonts with WinAnsi encoding — searchable and copyable, no font files to ship;
//! characters outside that encoding print as `?`. Photos are embedded as JPEG as they are
//! (DCTDecode), from the resized copies the media store keeps.

use futures_util::StreamExt;
use pdf_writer::{Content, Filter, Finish, Name, Pdf, Rect, Ref, Str};

use crate::domain::DropNumber;
use crate::error::CoreResult;
use crate::media::{MediaStore, THUMB_MAX};
use crate::store::{on_db, Db, DropDetail, Store};

const PAGE_W: f32 = 595.0; // A4, points
const PAGE_H: f32 = 842.0;
const MARGIN: f32 = 42.0;
/// The current photo's copy (long side, pixels) and its box on the page (points).
const PHOTO_PX: u32 = 1000;
const PHOTO_BOX: (f32, f32) = (220.0, 165.0);
const EARLIER_BOX: (f32, f32) = (96.0, 72.0);

/// Text in WinAnsi (Windows-1252): Latin-1 as it is, the typographic marks it has, `?` else.
pub fn win_ansi(s: &str) -> Vec<u8> {
    s.chars()
        .map(|c| match c {
            '\u{20}'..='\u{7e}' | '\u{a0}'..='\u{ff}' => c as u32 as u8,
            '€' => 0x80,
            '‚' => 0x82,
            '…' => 0x85,
            '‘' => 0x91,
            '’' => 0x92,
            '“' => 0x93,
            '”' => 0x94,
            '•' => 0x95,
            '–' => 0x96,
            '—' => 0x97,
            '→' => b'>',
            '\t' | '\n' | '\r' => b' ',
            _ => b'?',
        })
        .collect()
}

/// Lines of at most about `width` points of Helvetica at `size` (an average glyph is about
/// half the size wide), broken at spaces where possible.
fn wrap(text: &str, size: f32, width: f32) -> Vec<String> {
    let max = ((width / (size * 0.5)) as usize).max(8);
    let mut lines = vec![];
    for para in text.split('\n') {
        let mut line = String::new();
        for word in para.split(' ') {
            let mut word = word.to_string();
            while word.chars().count() > max {
                let head: String = word.chars().take(max).collect();
                word = word.chars().skip(max).collect();
                if !line.is_empty() {
                    lines.push(std::mem::take(&mut line));
                }
                lines.push(head);
            }
            if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > max {
                lines.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(&word);
        }
        lines.push(line);
    }
    lines
}

/// A JPEG to place: its bytes and pixel size.
struct Jpeg {
    bytes: Vec<u8>,
    w: u32,
    h: u32,
}

async fn jpeg(media: &MediaStore, sha: &str, max: u32) -> Option<Jpeg> {
    let path = media.resized(sha, max).await.ok()?;
    let bytes = tokio::fs::read(&path).await.ok()?;
    let (w, h) = image::ImageReader::new(std::io::Cursor::new(&bytes)).with_guessed_format().ok()?.into_dimensions().ok()?;
    Some(Jpeg { bytes, w, h })
}

/// The pages being laid out: content streams, the images each page uses, a cursor.
struct Layout {
    pages: Vec<(Content, Vec<usize>)>,
    images: Vec<Jpeg>,
    y: f32,
}

impl Layout {
    fn new() -> Self {
        let mut l = Layout { pages: vec![], images: vec![], y: 0.0 };
        l.new_page();
        l
    }
    fn new_page(&mut self) {
        self.pages.push((Content::new(), vec![]));
        self.y = PAGE_H - MARGIN;
    }
    /// Room for `h` points more on this page, else a new one.
    fn room(&mut self, h: f32) {
        if self.y - h < MARGIN {
            self.new_page();
        }
    }
    fn text_at(&mut self, x: f32, y: f32, s: &str, size: f32, bold: bool) {
        let c = &mut self.pages.last_mut().expect("a page").0;
        c.begin_text();
        c.set_font(Name(if bold { b"F2" } else { b"F1" }), size);
        c.next_line(x, y);
        c.show(Str(&win_ansi(s)));
        c.end_text();
    }
    /// A paragraph at `x`, wrapped to `width`, moving the cursor down.
    fn para(&mut self, x: f32, width: f32, s: &str, size: f32, bold: bool) {
        for line in wrap(s, size, width) {
            self.room(size * 1.35);
            self.y -= size * 1.35;
            self.text_at(x, self.y, &line, size, bold);
        }
    }
    /// An image in a box with its top-left at (x, top), keeping its shape; returns its height.
    fn image(&mut self, img: Jpeg, x: f32, top: f32, (bw, bh): (f32, f32)) -> f32 {
        let scale = (bw / img.w as f32).min(bh / img.h as f32);
        let (w, h) = (img.w as f32 * scale, img.h as f32 * scale);
        let n = self.images.len();
        self.images.push(img);
        let page = self.pages.last_mut().expect("a page");
        page.1.push(n);
        page.0.save_state();
        page.0.transform([w, 0.0, 0.0, h, x, top - h]);
        page.0.x_object(Name(format!("Im{n}").as_bytes()));
        page.0.restore_state();
        h
    }
}

fn when(ms: Option<i64>) -> String {
    ms.map(|t| format!("{} UTC", crate::fmt_time(t))).unwrap_or_else(|| "—".into())
}

/// The evidence pack of a drop, as PDF bytes.
pub async fn evidence_pdf(store: &Store, media: &MediaStore, number: &DropNumber) -> CoreResult<Vec<u8>> {
    let d: DropDetail = store.drop_detail(number).await?;
    // Every photo's copy first, four at a time (a copy not made yet is decoded and resized).
    let wanted: Vec<(String, u32)> = d
        .steps
        .iter()
        .flat_map(|s| s.photos.iter().enumerate().map(|(i, p)| (p.sha256.clone(), if i == 0 { PHOTO_PX } else { THUMB_MAX })))
        .collect();
    let mut ready: std::collections::HashMap<(String, u32), Jpeg> = futures_util::stream::iter(wanted)
        .map(|(sha, max)| async move {
            let j = jpeg(media, &sha, max).await;
            ((sha, max), j)
        })
        .buffer_unordered(4)
        .filter_map(|(k, j)| async move { j.map(|j| (k, j)) })
        .collect()
        .await;
    // Each photo's PDQ hash and its quality, where it was measured.
    let pdq: std::collections::HashMap<String, (String, i64)> = on_db!(store, pool => sqlx::query_as::<_, (String, String, i64)>(
        "select m.sha256, m.pdq_hash, coalesce(m.pdq_quality, 0) from photo_measure m
         where m.pdq_hash is not null and m.sha256 in (select p.sha256 from photo p where p.drop_id = $1)")
        .bind(d.drop_id.get()).fetch_all(pool).await?)
    .into_iter()
    .map(|(sha, hash, quality)| (sha, (hash, quality)))
    .collect();
    let mut l = Layout::new();
    let text_w = PAGE_W - 2.0 * MARGIN;
    l.para(MARGIN, text_w, &format!("Evidence pack — drop {}", d.drop_number), 18.0, true);
    l.y -= 4.0;
    let contractor = d.contractor.as_ref().map(|c| format!("{} ({})", c.name, c.phone)).unwrap_or_else(|| "—".into());
    for (label, value) in [
        ("Project", d.project.clone()),
        ("Contractor", contractor),
        ("Status", format!("{} (round {})", d.status.label(), d.round)),
        ("First message", when(Some(d.created_at))),
        ("Submitted for review", when(d.unreviewed_at)),
        ("Marked incomplete", when(d.incomplete_at)),
        ("Resubmitted", when(d.resubmitted_at)),
        ("Approved", when(d.approved_at)),
        ("Pack generated", when(Some(crate::now_ms()))),
    ] {
        l.para(MARGIN, text_w, &format!("{label}: {value}"), 10.0, false);
    }
    for step in &d.steps {
        l.y -= 10.0;
        // A step's heading stays on the page of its first photo.
        l.room(if step.photos.is_empty() { 60.0 } else { 60.0 + PHOTO_BOX.1 });
        l.para(MARGIN, text_w, &format!("Step {} — {}", step.number, step.name), 12.0, true);
        let mut verdict = format!("Verdict: {}", crate::domain::Verdict::feedback_label(step.verdict));
        if let Some(r) = step.reason_label.as_ref().or(step.reason.as_ref()) {
            verdict.push_str(&format!(" · Reason: {r}"));
        }
        if !step.note.is_empty() {
            verdict.push_str(&format!(" · Note: {}", step.note));
        }
        l.para(MARGIN, text_w, &verdict, 9.5, false);
        let by = match (&step.reviewer, step.reviewed_at) {
            _ if step.verdict == crate::domain::Verdict::Pending => match step.previous_verdict {
                Some(v) => format!("Not reviewed in this round (before the resubmission: {})", v.feedback_label()),
                None => "Not reviewed yet".into(),
            },
            (Some(r), at) => format!("Reviewed by {r}, {}", when(at)),
            (None, Some(at)) => format!("Reviewed {}", when(Some(at))),
            _ => "Not reviewed".into(),
        };
        l.para(MARGIN, text_w, &by, 9.5, false);
        if step.photos.is_empty() {
            l.para(MARGIN, text_w, "No photo.", 9.5, false);
        }
        for (i, p) in step.photos.iter().enumerate() {
            let (max, bx) = if i == 0 { (PHOTO_PX, PHOTO_BOX) } else { (THUMB_MAX, EARLIER_BOX) };
            l.y -= 6.0;
            l.room(bx.1 + 6.0);
            let top = l.y;
            let h = match ready.remove(&(p.sha256.clone(), max)) {
                Some(img) => l.image(img, MARGIN, top, bx),
                None => {
                    l.text_at(MARGIN, top - 10.0, "(the photo file is missing)", 9.0, false);
                    12.0
                }
            };
            // Beside the photo: when, which round, its digest and checks.
            let (x, w) = (MARGIN + bx.0 + 12.0, text_w - bx.0 - 12.0);
            l.y = top;
            let label = if i == 0 { "Current photo" } else { "Earlier photo" };
            l.para(x, w, &format!("{label} · received {} · round {}", when(Some(p.received_at)), p.round), 9.0, i == 0);
            l.para(x, w, &format!("SHA-256: {}", p.sha256), 7.5, false);
            if let Some((hash, quality)) = pdq.get(&p.sha256) {
                l.para(x, w, &format!("PDQ: {hash} (quality {quality})"), 7.5, false);
            }
            for c in &p.checks {
                let state = if c.resolved_at.is_some() { " (dismissed)" } else { "" };
                let detail = if c.detail.is_empty() { String::new() } else { format!(": {}", c.detail) };
                l.para(x, w, &format!("Check {} {}{state}{detail}", c.kind.as_str(), c.result.as_str()), 8.0, false);
            }
            l.y = l.y.min(top - h);
        }
    }
    l.y -= 12.0;
    l.room(40.0);
    l.para(MARGIN, text_w, "Timeline", 12.0, true);
    for e in &d.history {
        l.para(MARGIN, text_w, &format!("{} · {} · {}: {}", when(Some(e.at)), e.actor, e.kind, e.detail), 8.5, false);
    }
    Ok(write(l, &d))
}

/// The laid-out pages as a PDF file.
fn write(l: Layout, d: &DropDetail) -> Vec<u8> {
    let mut pdf = Pdf::new();
    let mut next = 1;
    let mut id = || {
        next += 1;
        Ref::new(next - 1)
    };
    let (catalog, tree, regular, bold, info) = (id(), id(), id(), id(), id());
    let image_ids: Vec<Ref> = l.images.iter().map(|_| id()).collect();
    let page_ids: Vec<(Ref, Ref)> = l.pages.iter().map(|_| (id(), id())).collect();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree).kids(page_ids.iter().map(|(p, _)| *p)).count(page_ids.len() as i32);
    pdf.document_info(info)
        .title(pdf_writer::TextStr(&format!("Evidence pack {}", d.drop_number)))
        .producer(pdf_writer::TextStr("Dropcheck"));
    pdf.type1_font(regular).base_font(Name(b"Helvetica")).encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.type1_font(bold).base_font(Name(b"Helvetica-Bold")).encoding_predefined(Name(b"WinAnsiEncoding"));
    for (img, rid) in l.images.iter().zip(&image_ids) {
        let mut x = pdf.image_xobject(*rid, &img.bytes);
        x.filter(Filter::DctDecode);
        x.width(img.w as i32);
        x.height(img.h as i32);
        x.color_space().device_rgb();
        x.bits_per_component(8);
        x.finish();
    }
    for ((content, imgs), (page_id, content_id)) in l.pages.into_iter().zip(&page_ids) {
        let mut page = pdf.page(*page_id);
        page.media_box(Rect::new(0.0, 0.0, PAGE_W, PAGE_H));
        page.parent(tree);
        page.contents(*content_id);
        let mut res = page.resources();
        res.fonts().pair(Name(b"F1"), regular).pair(Name(b"F2"), bold);
        let mut xo = res.x_objects();
        for n in imgs {
            xo.pair(Name(format!("Im{n}").as_bytes()), image_ids[n]);
        }
        xo.finish();
        res.finish();
        page.finish();
        pdf.stream(*content_id, &content.finish());
    }
    pdf.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_win_ansi_and_wraps_at_spaces() {
        assert_eq!(win_ansi("Café – “ok” → ✓"), b"Caf\xe9 \x96 \x93ok\x94 > ?".to_vec());
        let lines = wrap("one two three four five six seven eight nine ten", 10.0, 80.0);
        assert!(lines.iter().all(|l| l.chars().count() <= 16), "{lines:?}");
        assert_eq!(lines.join(" "), "one two three four five six seven eight nine ten");
        let long = wrap(&"a".repeat(40), 10.0, 80.0);
        assert_eq!(long.iter().map(|l| l.len()).sum::<usize>(), 40);
    }
}
