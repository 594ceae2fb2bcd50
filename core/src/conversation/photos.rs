//! Photos and files a contractor sends: filed on the active (or captioned) drop's steps, kept
//! as attachments, or held until a drop number arrives; acknowledged once per burst.

use crate::ids::DropId;
use minijinja::context;
use sqlx::FromRow;

use super::{parse_caption, progress, target_step, with_qa, Turn, CONTEXT_IDLE_MS, DOWNLOAD_FAILED};
use crate::domain::{CheckKind, StepNo};
use crate::error::CoreResult;
use crate::media::StoredMedia;
use crate::providers::InboundMessage;
use crate::store::{on_tx, DropDetail, NewPhoto};

impl Turn<'_, '_> {
    /// Files the photos of a media message on the active (or captioned) drop, or holds them
    /// until a drop number arrives.
    pub(super) async fn file_photos(&mut self, msg: &InboundMessage, photos: &[Result<StoredMedia, String>]) -> CoreResult<()> {
        let caption = parse_caption(&msg.body);
        let mut drop = match &caption.drop {
            Some(dn) => self.open_drop(dn).await?,
            None => self.active_drop().await?,
        };
        let now = self.now;
        for (i, p) in photos.iter().enumerate() {
            let media_id = msg.media.get(i).and_then(|m| m.media_id.clone().or_else(|| m.url.clone()));
            let drop_id = drop.as_ref().map(|d| d.drop_id);
            let stored = match p {
                Ok(s) => s,
                Err(why) if why.starts_with(DOWNLOAD_FAILED) => {
                    // Visible to the contractor (send it again) and on the drop's timeline.
                    self.fx.note(format!("media {i}: {why}"));
                    if let Some(id) = drop_id {
                        self.note_on_drop(id, "media_failed", why).await?;
                    }
                    self.reply("media_failed", context! {}, drop_id, None).await?;
                    continue;
                }
                Err(why) => {
                    self.fx.note(format!("media {i} not usable: {why}"));
                    self.reply("unsupported", context! { kind => "this kind of file" }, None, None).await?;
                    continue;
                }
            };
            if !matches!(stored.mime_type.as_str(), "image/jpeg" | "image/png") {
                self.keep_attachment(stored, media_id, drop.as_ref()).await?;
                continue;
            }
            let Some(d) = drop.as_ref() else {
                if let Some(m) = &stored.measures {
                    self.tx.record_measures(&stored.sha256, m, stored.pdq.as_ref(), stored.phash.as_ref()).await?;
                }
                on_tx!(self.tx, c => { sqlx::query(
                    "insert into held_photo (phone, sha256, mime_type, size_bytes, width, height, provider_media_id, step_hint, received_at)
                     values ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
                    .bind(self.phone.as_str()).bind(&stored.sha256).bind(&stored.mime_type).bind(stored.size_bytes).bind(stored.width)
                    .bind(stored.height).bind(&media_id).bind(caption.step).bind(now).execute(&mut *c).await?; });
                self.fx.note("photo held until a drop number arrives");
                let batch = format!("held:{}", self.phone.as_str());
                self.reply("photo_held", context! {}, None, Some(batch)).await?;
                continue;
            };
            if d.steps.iter().flat_map(|s| &s.photos).any(|ph| ph.sha256 == stored.sha256) {
                self.fx.note(format!("photo already on drop {}", d.drop_number));
                continue;
            }
            let Some(step) = target_step(d, caption.step) else {
                self.fx.note("no step left for the photo");
                let message = format!(
                    "Every step of {} has a photo. Caption the photo with its step number (e.g. \"3\") to add it there.",
                    d.drop_number
                );
                self.reply("drop_refused", context! { message }, drop_id, None).await?;
                continue;
            };
            let photo = NewPhoto { vision: self.vision, ..NewPhoto::from_stored(StepNo::new(step)?, stored, media_id, now) };
            self.tx.add_photo(d, &photo, &self.actor).await?;
            self.fx.note(format!("photo on {} step {step}", d.drop_number));
            let fresh = self.drop_by_id(d.drop_id).await?;
            let fresh = self.complete_if_ready(fresh).await?;
            self.ack_photos(&fresh).await?;
            drop = Some(fresh);
        }
        Ok(())
    }

    /// A file that is not a checklist photo: kept as an attachment with the active drop.
    async fn keep_attachment(&mut self, stored: &StoredMedia, media_id: Option<String>, drop: Option<&DropDetail>) -> CoreResult<()> {
        let drop_id = drop.map(|d| d.drop_id);
        let (phone, now) = (self.phone.as_str().to_string(), self.now);
        let id: Option<i64> = on_tx!(self.tx, c => {
            let exists: Option<i64> = sqlx::query_scalar(
                "select attachment_id from attachment where sha256 = $1 and phone = $2 and coalesce(drop_id, 0) = coalesce($3, 0)")
                .bind(&stored.sha256).bind(&phone).bind(drop_id).fetch_optional(&mut *c).await?;
            match exists {
                Some(_) => None,
                None => Some(sqlx::query_scalar::<_, i64>(
                    "insert into attachment (drop_id, phone, sha256, mime_type, size_bytes, provider_media_id, received_at)
                     values ($1, $2, $3, $4, $5, $6, $7) returning attachment_id")
                    .bind(drop_id).bind(&phone).bind(&stored.sha256).bind(&stored.mime_type).bind(stored.size_bytes)
                    .bind(&media_id).bind(now).fetch_one(&mut *c).await?),
            }
        });
        if let Some(id) = id {
            if let Some(d) = drop {
                let kb = (stored.size_bytes + 1023) / 1024;
                self.note_on_drop(d.drop_id, "attachment", &format!("file received: {} ({kb} KB), attachment #{id}", stored.mime_type))
                    .await?;
            }
            self.fx.note(format!("attachment #{id} ({})", stored.mime_type));
        }
        let drop_number = drop.map(|d| d.drop_number.clone());
        self.reply("attachment_received", context! { mime_type => &stored.mime_type, drop_number }, drop_id, None).await
    }

    /// One acknowledgment per burst: the unsent ack for this drop is re-rendered with every
    /// photo since it was first queued and pushed back (`reply` merges replies with the same
    /// batch key).
    async fn ack_photos(&mut self, d: &DropDetail) -> CoreResult<()> {
        let key = format!("ack:{}:{}", self.phone.as_str(), d.drop_id);
        let pending: Option<i64> = on_tx!(self.tx, c => sqlx::query_scalar(
            "select created_at from message where batch_key = $1 and status = 'queued' and attempts = 0 order by message_id desc limit 1")
            .bind(&key).fetch_optional(&mut *c).await?);
        let since = pending.unwrap_or(self.now);
        let steps: Vec<i64> = d.steps.iter().filter(|s| s.photos.iter().any(|p| p.received_at >= since)).map(|s| s.number).collect();
        let count = d.steps.iter().flat_map(|s| &s.photos).filter(|p| p.received_at >= since).count();
        let (_, _, _, next) = progress(d);
        let retakes = retake_requests(&self.tx.open_flags_since(d.drop_id, since).await?);
        let vars = context! { drop_number => &d.drop_number, count, steps, next_step => next, with_qa => with_qa(d), retakes };
        self.reply("photo_ack", vars, Some(d.drop_id), Some(key)).await
    }

    /// Attaches photos held for this number (received in the last 30 minutes) to the drop.
    pub(super) async fn attach_held(&mut self, d: &DropDetail) -> CoreResult<usize> {
        #[derive(FromRow)]
        struct Held {
            held_id: i64,
            sha256: String,
            mime_type: String,
            size_bytes: i64,
            width: i64,
            height: i64,
            provider_media_id: Option<String>,
            step_hint: Option<i64>,
            received_at: i64,
        }
        let held: Vec<Held> = on_tx!(self.tx, c => sqlx::query_as::<_, Held>(
            "select held_id, sha256, mime_type, size_bytes, width, height, provider_media_id, step_hint, received_at
             from held_photo where phone = $1 and received_at >= $2 order by received_at, held_id")
            .bind(self.phone.as_str()).bind(self.now - CONTEXT_IDLE_MS).fetch_all(&mut *c).await?);
        let mut current = d.clone();
        let mut n = 0;
        for h in held {
            if let Some(step) = target_step(&current, h.step_hint) {
                if !current.steps.iter().flat_map(|s| &s.photos).any(|p| p.sha256 == h.sha256) {
                    let photo = NewPhoto {
                        step: StepNo::new(step)?,
                        sha256: h.sha256,
                        mime_type: h.mime_type,
                        size_bytes: h.size_bytes,
                        width: h.width,
                        height: h.height,
                        provider_media_id: h.provider_media_id,
                        received_at: h.received_at,
                        measures: None,
                        pdq: None,
                        phash: None,
                        similar: Default::default(),
                        vision: self.vision,
                    };
                    self.tx.add_photo(&current, &photo, &self.actor).await?;
                    n += 1;
                    current = self.drop_by_id(d.drop_id).await?;
                }
            }
            on_tx!(self.tx, c => { sqlx::query("delete from held_photo where held_id = $1").bind(h.held_id).execute(&mut *c).await?; });
        }
        if n > 0 {
            self.fx.note(format!("{n} held photo(s) filed on {}", d.drop_number));
        }
        Ok(n)
    }

    /// Adds an entry to a drop's timeline.
    async fn note_on_drop(&mut self, drop_id: DropId, kind: &str, detail: &str) -> CoreResult<()> {
        let now = self.now;
        on_tx!(self.tx, c => {
            sqlx::query("insert into drop_event (drop_id, at, actor, kind, detail) values ($1, $2, $3, $4, $5)")
                .bind(drop_id).bind(now).bind(self.phone.as_str()).bind(kind).bind(detail).execute(&mut *c).await?;
            sqlx::query("update drop_job set activity_at = $1 where drop_id = $2").bind(now).bind(drop_id).execute(&mut *c).await?;
        });
        Ok(())
    }
}

/// What the acknowledgment asks again, one entry per step with an open flag: `step`, the
/// `problem` (every flag's, joined) and the `advice` (the first flag's).
fn retake_requests(flags: &[(i64, CheckKind)]) -> Vec<minijinja::Value> {
    let mut out: Vec<(i64, Vec<&str>, &str)> = vec![];
    for (step, kind) in flags {
        let (problem, advice) = kind.retake_advice();
        match out.last_mut() {
            Some((s, problems, _)) if s == step => problems.push(problem),
            _ => out.push((*step, vec![problem], advice)),
        }
    }
    out.into_iter().map(|(step, problems, advice)| context! { step, problem => problems.join(" and "), advice }).collect()
}
