//! Changing drops: photos added and moved, verdicts, and the status transitions (complete,
//! mark incomplete, approve, resubmit), each in one transaction.

use super::*;

/// One verdict to record on a step.
#[derive(Debug, Clone)]
pub struct StepVerdict {
    pub step: StepNo,
    pub verdict: Verdict,
    pub reason: Option<String>,
    pub note: String,
}

/// A photo to attach to a drop, already stored in the media directory.
#[derive(Debug, Clone)]
pub struct NewPhoto {
    pub step: StepNo,
    pub sha256: String,
    pub mime_type: String,
    pub size_bytes: i64,
    pub width: i64,
    pub height: i64,
    pub provider_media_id: Option<String>,
    pub received_at: i64,
    /// Its usable-photo measures, when they were taken as it was stored (a photo filed from
    /// the held ones has them stored already).
    pub measures: Option<crate::photo_checks::Measures>,
    /// Its PDQ hash and pHash, and the stored photos that look the same or alike (see
    /// [`crate::media::StoredMedia`]).
    pub pdq: Option<crate::pdq::Pdq>,
    pub phash: Option<crate::phash::PHash>,
    pub similar: super::Similar,
    /// Whether the photo gets a vision check (queued as it is filed).
    pub vision: bool,
}

impl NewPhoto {
    /// A photo as stored in the media directory, for `step`.
    pub fn from_stored(step: StepNo, stored: &crate::media::StoredMedia, provider_media_id: Option<String>, received_at: i64) -> Self {
        NewPhoto {
            step,
            sha256: stored.sha256.clone(),
            mime_type: stored.mime_type.clone(),
            size_bytes: stored.size_bytes,
            width: stored.width,
            height: stored.height,
            provider_media_id,
            received_at,
            measures: stored.measures,
            pdq: stored.pdq,
            phash: stored.phash,
            similar: stored.similar.clone(),
            vision: false,
        }
    }
}

impl Store {
    /// Attaches a photo to a step of a drop.
    pub async fn add_photo(&self, number: &DropNumber, photo: &NewPhoto, actor: &ActorRef) -> CoreResult<PhotoId> {
        let found;
        let photo = match &photo.pdq {
            Some(pdq) if photo.similar == super::Similar::default() => {
                found = NewPhoto { similar: self.similar_photos(pdq, photo.phash.as_ref()).await?, ..photo.clone() };
                &found
            }
            _ => photo,
        };
        let mut tx = self.begin().await?;
        let detail = tx.drop_state(DropKey::Number(number)).await?;
        let id = tx.add_photo(&detail, photo, actor).await?;
        tx.commit().await?;
        Ok(id)
    }

    pub async fn photo(&self, photo_id: PhotoId) -> CoreResult<PhotoInfo> {
        on_db!(self, pool => sqlx::query_as::<_, Keyed<PhotoInfo>>(
            "select photo_id, step_no, sha256, mime_type, size_bytes, width, height, round, received_at from photo where photo_id = $1")
            .bind(photo_id).fetch_optional(pool).await?)
        .map(|k| k.0)
        .ok_or_else(|| CoreError::not_found("photo_not_found", format!("photo {photo_id}")))
    }

    /// Moves a photo (of this drop) to another step.
    pub async fn move_photo(&self, number: &DropNumber, photo_id: PhotoId, to: StepNo, actor: &ActorRef) -> CoreResult<()> {
        let detail = self.drop_detail(number).await?;
        if !crate::lifecycle::takes_verdicts(detail.status) {
            return Err(CoreError::conflict("drop_approved", "The drop is approved; re-open it before changing it."));
        }
        let from = detail
            .steps
            .iter()
            .flat_map(|s| s.photos.iter())
            .find(|p| p.photo_id == photo_id)
            .map(|p| p.step_no)
            .ok_or_else(|| CoreError::not_found("photo_not_found", format!("photo {photo_id} of drop {number}")))?;
        if !detail.steps.iter().any(|s| s.number == to.get()) {
            return Err(InputError::new("invalid_step", format!("drop {number} has no step {}", to.get())).into());
        }
        {
            let mut tx = self.begin().await?;
            let out = on_tx!(&mut tx, c => {
                sqlx::query("update photo set step_no = $1 where photo_id = $2").bind(to.get()).bind(photo_id).execute(&mut *c).await?;
                recount_photo_steps!(c, detail.drop_id);
                history!(c, detail.drop_id, &actor.label, "photo_moved", format!("photo moved from step {from} to step {}", to.get()));
            });
            tx.commit().await?;
            out
        };
        Ok(())
    }

    /// Records verdicts on steps. Refused on an approved drop; accepted steps of a resubmitted
    /// drop stay locked unless the verdict is an explicit re-open (`pending`).
    pub async fn set_verdicts(&self, number: &DropNumber, verdicts: &[StepVerdict], actor: &ActorRef) -> CoreResult<()> {
        if verdicts.is_empty() {
            return Ok(());
        }
        let detail = self.drop_detail(number).await?;
        if !crate::lifecycle::takes_verdicts(detail.status) {
            return Err(CoreError::conflict("drop_approved", "The drop is approved; an admin must re-open it before it can be changed."));
        }
        let reasons = self.reasons().await?;
        for v in verdicts {
            if !detail.steps.iter().any(|s| s.number == v.step.get()) {
                return Err(InputError::new("invalid_step", format!("drop {number} has no step {}", v.step.get())).into());
            }
            if let Some(r) = &v.reason {
                if !reasons.iter().any(|x| &x.code == r) {
                    return Err(InputError::new("invalid_reason", format!("'{r}' is not a reason code")).into());
                }
            }
            if v.note.len() > 2000 {
                return Err(InputError::new("invalid_note", "a note can be at most 2000 characters").into());
            }
        }
        let now = now_ms();
        {
            let mut tx = self.begin().await?;
            let out = on_tx!(&mut tx, c => {
                for v in verdicts {
                    let reason = if v.verdict.is_rejection() { v.reason.clone() } else { None };
                    let note = if v.verdict == Verdict::Pending { String::new() } else { v.note.trim().to_string() };
                    sqlx::query(
                        "insert into step_review (drop_id, step_no, verdict, reason_code, note, reviewer_id, updated_at)
                     values ($1, $2, $3, $4, $5, $6, $7)
                     on conflict (drop_id, step_no) do update set verdict = excluded.verdict, reason_code = excluded.reason_code,
                        note = excluded.note, reviewer_id = excluded.reviewer_id, updated_at = excluded.updated_at")
                        .bind(detail.drop_id).bind(v.step.get()).bind(v.verdict.as_str()).bind(&reason).bind(&note)
                        .bind(actor.user_id).bind(now).execute(&mut *c).await?;
                    let mut what = format!("step {} → {}", v.step.get(), v.verdict);
                    if let Some(r) = &reason { what.push_str(&format!(" ({r})")); }
                    if !note.is_empty() { what.push_str(&format!(": {note}")); }
                    history!(c, detail.drop_id, &actor.label, "verdict", what);
                }
                sqlx::query("update drop_job set activity_at = $1 where drop_id = $2").bind(now).bind(detail.drop_id).execute(&mut *c).await?;
            });
            tx.commit().await?;
            out
        };
        Ok(())
    }

    /// collecting → unreviewed.
    pub async fn complete(&self, number: &DropNumber, actor: &ActorRef) -> CoreResult<DropStatus> {
        self.complete_because(number, actor, None).await
    }

    /// collecting → unreviewed, with why in the history entry (e.g. "every step has a photo").
    pub async fn complete_because(&self, number: &DropNumber, actor: &ActorRef, why: Option<&str>) -> CoreResult<DropStatus> {
        let mut tx = self.begin().await?;
        let detail = tx.drop_state(DropKey::Number(number)).await?;
        let to = tx.change_status(&detail, Action::Complete, actor, why).await?;
        tx.commit().await?;
        Ok(to)
    }

    /// Marks a drop incomplete and queues the feedback message in the same transaction.
    /// Returns the queued message text.
    pub async fn mark_incomplete(&self, number: &DropNumber, actor: &ActorRef) -> CoreResult<String> {
        let detail = self.drop_detail(number).await?;
        let to = lifecycle::transition(detail.status, Action::MarkIncomplete, actor.kind)?;
        let reasons = self.reasons().await?;
        let (body, vars) = self.feedback_message(&detail, &reasons).await?;
        let vars = crate::outbox::vars_json(&vars)?;
        let phone = detail
            .contractor
            .as_ref()
            .map(|c| c.phone.clone())
            .ok_or_else(|| CoreError::conflict("no_contractor", "This drop has no contractor number to send feedback to."))?;
        let now = now_ms();
        let steps: Vec<String> = detail.rejected_steps().map(|s| s.number.to_string()).collect();
        {
            let mut tx = self.begin().await?;
            let out = on_tx!(&mut tx, c => {
                set_status!(c, detail.drop_id, detail.status, to, "incomplete_at", now);
                sqlx::query(
                    "insert into message (direction, phone, body, template, template_vars, drop_id, status, attempts, next_attempt_at,
                    idempotency_key, created_at, updated_at)
                 values ('out', $1, $2, 'drop_feedback', $3, $4, 'queued', 0, $5, $6, $5, $5)")
                    .bind(&phone).bind(&body).bind(&vars).bind(detail.drop_id).bind(now)
                    // A drop is marked incomplete at most once per round.
                    .bind(format!("review:{}:{}:incomplete", detail.drop_id, detail.round))
                    .execute(&mut *c).await?;
                history!(c, detail.drop_id, &actor.label, "status",
                    format!("{} → Incomplete{}{}", detail.status.label(), crate::scorecards::FEEDBACK_STEPS, steps.join(", ")));
            });
            tx.drop_status_changed(&detail, to).await?;
            tx.commit().await?;
            out
        };
        Ok(body)
    }

    /// Approves a drop. With `accept_pending`, steps still pending become ok first ("Approve all");
    /// steps with a rejection verdict always block approval.
    pub async fn approve(&self, number: &DropNumber, accept_pending: bool, actor: &ActorRef) -> CoreResult<()> {
        let detail = self.drop_detail(number).await?;
        let to = lifecycle::transition(detail.status, Action::Approve, actor.kind)?;
        let rejected: Vec<String> = detail.rejected_steps().map(|s| s.number.to_string()).collect();
        if !rejected.is_empty() {
            return Err(CoreError::conflict(
                "steps_rejected",
                format!(
                    "Steps {} are marked for the contractor to fix; mark the drop incomplete, or accept those steps first.",
                    rejected.join(", ")
                ),
            ));
        }
        let pending: Vec<&StepDetail> = detail.steps.iter().filter(|s| s.verdict == Verdict::Pending).collect();
        if !pending.is_empty() {
            if !accept_pending {
                let list: Vec<String> = pending.iter().map(|s| s.number.to_string()).collect();
                return Err(CoreError::conflict("steps_pending", format!("Steps {} are not reviewed yet.", list.join(", "))));
            }
            let no_photo: Vec<String> = pending.iter().filter(|s| s.photos.is_empty()).map(|s| s.number.to_string()).collect();
            if !no_photo.is_empty() {
                return Err(CoreError::conflict(
                    "steps_without_photo",
                    format!("Steps {} have no photo; mark them missing, or accept them one by one.", no_photo.join(", ")),
                ));
            }
        }
        let now = now_ms();
        {
            let mut tx = self.begin().await?;
            let out = on_tx!(&mut tx, c => {
                for s in &pending {
                    sqlx::query(
                        "insert into step_review (drop_id, step_no, verdict, reason_code, note, reviewer_id, updated_at)
                     values ($1, $2, 'ok', null, '', $3, $4)
                     on conflict (drop_id, step_no) do update set verdict = 'ok', reason_code = null, note = '',
                        reviewer_id = excluded.reviewer_id, updated_at = excluded.updated_at")
                        .bind(detail.drop_id).bind(s.number).bind(actor.user_id).bind(now).execute(&mut *c).await?;
                }
                set_status!(c, detail.drop_id, detail.status, to, "approved_at", now);
                let what = if pending.is_empty() { format!("{} → Approved", detail.status.label()) }
                           else { format!("{} → Approved (accepted {} pending steps)", detail.status.label(), pending.len()) };
                history!(c, detail.drop_id, &actor.label, "status", what);
            });
            tx.drop_status_changed(&detail, to).await?;
            tx.commit().await?;
            out
        };
        Ok(())
    }

    /// incomplete → resubmitted: the round goes up, steps not ok reopen (their last verdict is
    /// kept as `previous_*` for side-by-side review), the feedback-sent time clears.
    pub async fn resubmit(&self, number: &DropNumber, actor: &ActorRef) -> CoreResult<()> {
        let mut tx = self.begin().await?;
        let detail = tx.drop_state(DropKey::Number(number)).await?;
        tx.change_status(&detail, Action::Resubmit, actor, None).await?;
        tx.commit().await?;
        Ok(())
    }
}
