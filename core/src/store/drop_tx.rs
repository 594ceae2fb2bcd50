//! Drop changes inside a caller's transaction (the inbox applies a message's effects in one):
//! contacts, loading a drop, creating one, adding a photo, changing its status.

use super::drops::{assemble_detail, with_checks, DropRow, ReviewRow, CHECKLIST_SELECT, DROP_ROW_SELECT, PHOTOS_SELECT, REVIEWS_SELECT};
use super::photo_checks::{PhotoCheck, CHECKS_SELECT};
use super::*;

/// Which drop to load.
#[derive(Debug, Clone, Copy)]
pub enum DropKey<'a> {
    Number(&'a DropNumber),
    Id(DropId),
}

/// The drop operations a larger change (an inbound message) makes inside its own transaction;
/// the `Store` methods of the same names run each in a transaction of its own.
impl Tx<'_> {
    /// Finds or creates the contact for a phone number (a non-empty `name` fills an empty
    /// one; a new contact records `contact.created` and runs its rules). Returns its id and
    /// whether the number opted out.
    pub async fn upsert_contact(&mut self, phone: &Phone, name: &str, now: i64) -> CoreResult<(ContactId, bool)> {
        self.touch_contact(phone, name, None, now).await
    }

    /// Records that a number wrote to us at `now` (WhatsApp's 24-hour window starts there):
    /// [`Tx::upsert_contact`] that also sets the contact's last inbound time.
    pub async fn note_inbound(&mut self, phone: &Phone, name: &str, now: i64) -> CoreResult<(ContactId, bool)> {
        self.touch_contact(phone, name, Some(now), now).await
    }

    async fn touch_contact(&mut self, phone: &Phone, name: &str, inbound_at: Option<i64>, now: i64) -> CoreResult<(ContactId, bool)> {
        let (id, created) = self.insert_contact(phone, name.trim(), now).await?;
        let opted_out: i64 = on_tx!(self, c => sqlx::query_scalar(
            "update contact set name = case when name = '' then $1 else name end, last_inbound_at = coalesce($2, last_inbound_at)
             where contact_id = $3 returning opted_out")
            .bind(name.trim()).bind(inbound_at).bind(id).fetch_one(&mut *c).await?);
        if created {
            self.contact_event("contact.created", id.get(), &[], 0, true).await?;
        }
        Ok((id, opted_out != 0))
    }

    /// A drop's status, steps, reviews and photos, as a change needs them to decide; its
    /// history and messages are not loaded (left empty).
    pub async fn drop_state(&mut self, key: DropKey<'_>) -> CoreResult<DropDetail> {
        self.drop_state_in(None, key).await
    }

    /// [`Tx::drop_state`] with the checklist and review reasons taken from `settings` (read
    /// once for a batch of inbound events) where they hold them.
    pub(crate) async fn drop_state_in(&mut self, settings: Option<&Settings>, key: DropKey<'_>) -> CoreResult<DropDetail> {
        let d: Option<DropRow> = on_tx!(self, c => match key {
            DropKey::Number(n) => sqlx::query_as::<_, Keyed<DropRow>>(&format!("{DROP_ROW_SELECT} where d.drop_number = $1"))
                .bind(n.as_str()).fetch_optional(&mut *c).await?,
            DropKey::Id(id) => sqlx::query_as::<_, Keyed<DropRow>>(&format!("{DROP_ROW_SELECT} where d.drop_id = $1"))
                .bind(id).fetch_optional(&mut *c).await?,
        })
        .map(|k| k.0);
        let d = d.ok_or_else(|| match key {
            DropKey::Number(n) => CoreError::not_found("drop_not_found", format!("drop {n}")),
            DropKey::Id(id) => CoreError::not_found("drop_not_found", format!("drop {id}")),
        })?;
        let (reviews, photos, checks) = on_tx!(self, c => (
            sqlx::query_as::<_, ReviewRow>(REVIEWS_SELECT).bind(d.drop_id).fetch_all(&mut *c).await?,
            Keyed::all(sqlx::query_as::<_, Keyed<PhotoInfo>>(PHOTOS_SELECT).bind(d.drop_id).fetch_all(&mut *c).await?),
            Keyed::all(sqlx::query_as::<_, Keyed<PhotoCheck>>(CHECKS_SELECT).bind(d.drop_id).fetch_all(&mut *c).await?),
        ));
        let photos = with_checks(photos, checks);
        let checklist = match settings.and_then(|s| s.checklist(d.project_id)) {
            Some(steps) => steps.to_vec(),
            None => on_tx!(self, c => sqlx::query_as::<_, ChecklistStep>(CHECKLIST_SELECT).bind(d.project_id).fetch_all(&mut *c).await?),
        };
        let read;
        let reasons = match settings {
            Some(s) => s.reasons(),
            None => {
                read = on_tx!(self, c => sqlx::query_as::<_, Reason>("select code, label from review_reason").fetch_all(&mut *c).await?);
                &read[..]
            }
        };
        assemble_detail(d, checklist, reviews, photos, vec![], vec![], reasons)
    }

    /// Creates a drop unless one with this number exists. Returns whether it was created.
    pub async fn create_drop(
        &mut self,
        project: &Project,
        number: &DropNumber,
        contact_id: Option<ContactId>,
        status: DropStatus,
        actor: &ActorRef,
        now: i64,
    ) -> CoreResult<bool> {
        project.check_drop_number(number)?;
        let unreviewed_at = (status == DropStatus::Unreviewed).then_some(now);
        Ok(on_tx!(self, c => {
            let id: Option<i64> = sqlx::query_scalar(
                "insert into drop_job (drop_number, project_id, contractor_id, status, round, created_at, activity_at, unreviewed_at)
                 values ($1, $2, $3, $4, 1, $5, $5, $6) on conflict (drop_number) do nothing returning drop_id")
                .bind(number.as_str()).bind(project.project_id).bind(contact_id).bind(status.as_str()).bind(now).bind(unreviewed_at)
                .fetch_optional(&mut *c).await?;
            if let Some(id) = id {
                sqlx::query("update drop_status_count set n = n + 1 where status = $1").bind(status.as_str()).execute(&mut *c).await?;
                history!(c, id, &actor.label, "created", format!("created as {} in project {}", status.label(), project.name));
                true
            } else {
                false
            }
        }))
    }

    /// Attaches a photo to a step of `detail` (as loaded in this transaction) and checks it
    /// (see [`Tx::judge_photo`]).
    pub async fn add_photo(&mut self, detail: &DropDetail, photo: &NewPhoto, actor: &ActorRef) -> CoreResult<PhotoId> {
        if !detail.steps.iter().any(|s| s.number == photo.step.get()) {
            return Err(InputError::new("invalid_step", format!("drop {} has no step {}", detail.drop_number, photo.step.get())).into());
        }
        // Photos sent while the drop waits for fixes belong to the round the resubmission opens.
        let round = if detail.status == DropStatus::Incomplete { detail.round + 1 } else { detail.round };
        if let Some(m) = &photo.measures {
            self.record_measures(&photo.sha256, m, photo.pdq.as_ref(), photo.phash.as_ref()).await?;
        }
        let id = on_tx!(self, c => {
            let id: PhotoId = sqlx::query_scalar(
                "insert into photo (drop_id, step_no, sha256, mime_type, size_bytes, width, height, provider_media_id, round, received_at)
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) returning photo_id")
                .bind(detail.drop_id).bind(photo.step.get()).bind(&photo.sha256).bind(&photo.mime_type).bind(photo.size_bytes)
                .bind(photo.width).bind(photo.height).bind(&photo.provider_media_id).bind(round).bind(photo.received_at)
                .fetch_one(&mut *c).await?;
            recount_photo_steps!(c, detail.drop_id);
            history!(c, detail.drop_id, &actor.label, "photo", format!("photo for step {}", photo.step.get()));
            id
        });
        self.judge_photo(detail.drop_id, id, photo).await?;
        self.photo_added(detail, photo.step.get(), id.get(), &photo.sha256, round).await?;
        Ok(id)
    }

    /// A contractor's or the system's status change: `Complete` (collecting → unreviewed, with
    /// `why` in the history entry) or `Resubmit` (incomplete → resubmitted: the round goes up,
    /// steps not ok reopen with their last verdict kept as `previous_*`, the feedback-sent
    /// time clears). Other actions have their own `Store` methods.
    pub async fn change_status(
        &mut self,
        detail: &DropDetail,
        action: Action,
        actor: &ActorRef,
        why: Option<&str>,
    ) -> CoreResult<DropStatus> {
        let to = lifecycle::transition(detail.status, action, actor.kind)?;
        let now = now_ms();
        let mut what = format!("{} → {}", detail.status.label(), to.label());
        if let Some(why) = why {
            what.push_str(&format!(" ({why})"));
        }
        on_tx!(self, c => match action {
            Action::Complete => {
                set_status!(c, detail.drop_id, detail.status, to, "unreviewed_at", now);
                history!(c, detail.drop_id, &actor.label, "status", what);
            }
            Action::Resubmit => {
                set_status!(c, detail.drop_id, detail.status, to, "resubmitted_at", now);
                sqlx::query("update drop_job set round = round + 1, feedback_sent_at = null where drop_id = $1")
                    .bind(detail.drop_id).execute(&mut *c).await?;
                sqlx::query("update step_review set prev_verdict = null, prev_note = null where drop_id = $1")
                    .bind(detail.drop_id).execute(&mut *c).await?;
                sqlx::query(
                    "update step_review set prev_verdict = verdict, prev_note = note, verdict = 'pending', reason_code = null, note = '',
                        updated_at = $1 where drop_id = $2 and verdict <> 'ok'")
                    .bind(now).bind(detail.drop_id).execute(&mut *c).await?;
                history!(c, detail.drop_id, &actor.label, "status", format!("Incomplete → Resubmitted (round {})", detail.round + 1));
            }
            other => return Err(CoreError::Internal(format!("change_status does not apply {other:?}"))),
        });
        self.drop_status_changed(detail, to).await?;
        Ok(to)
    }
}
