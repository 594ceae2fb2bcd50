//! Drops as they are read: the next one to review, one drop in full (steps, photos, reviews,
//! history, messages). The list is in `drop_list`.

use super::photo_checks::{PhotoCheck, CHECKS_SELECT};
use super::*;

#[derive(Debug, Clone, Serialize, FromRow)]
pub struct PhotoInfo {
    pub photo_id: PhotoId,
    pub step_no: i64,
    pub sha256: String,
    pub mime_type: String,
    pub size_bytes: i64,
    pub width: i64,
    pub height: i64,
    pub round: i64,
    pub received_at: i64,
    /// Its usable-photo checks (none for a photo filed before they existed).
    #[sqlx(skip)]
    pub checks: Vec<PhotoCheck>,
}

impl PhotoInfo {
    pub fn open_flags(&self) -> impl Iterator<Item = &PhotoCheck> {
        self.checks.iter().filter(|c| c.is_open_flag())
    }
}

#[derive(Debug, Clone, FromRow)]
pub(crate) struct ReviewRow {
    pub(crate) step_no: i64,
    pub(crate) verdict: Verdict,
    pub(crate) reason_code: Option<String>,
    pub(crate) note: String,
    pub(crate) reviewer: Option<String>,
    pub(crate) prev_verdict: Option<Verdict>,
    pub(crate) prev_note: Option<String>,
    pub(crate) updated_at: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepDetail {
    pub number: i64,
    pub name: String,
    pub description: String,
    pub verdict: Verdict,
    pub reason: Option<String>,
    pub reason_label: Option<String>,
    pub note: String,
    pub reviewer: Option<String>,
    pub reviewed_at: Option<i64>,
    /// Set when the step reopened at the last resubmission: what it was before.
    pub previous_verdict: Option<Verdict>,
    pub previous_note: Option<String>,
    /// Newest first.
    pub photos: Vec<PhotoInfo>,
}

#[derive(Debug, Clone, Serialize, FromRow)]
pub struct HistoryEntry {
    pub at: i64,
    pub actor: String,
    pub kind: String,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, FromRow)]
pub(crate) struct DropRow {
    pub(crate) drop_id: DropId,
    pub(crate) drop_number: DropNumber,
    pub(crate) status: DropStatus,
    pub(crate) project_id: ProjectId,
    pub(crate) project: String,
    pub(crate) contractor_phone: Option<Phone>,
    pub(crate) contractor_name: Option<String>,
    pub(crate) round: i64,
    pub(crate) created_at: i64,
    pub(crate) activity_at: i64,
    pub(crate) unreviewed_at: Option<i64>,
    pub(crate) incomplete_at: Option<i64>,
    pub(crate) resubmitted_at: Option<i64>,
    pub(crate) approved_at: Option<i64>,
    pub(crate) feedback_sent_at: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Contractor {
    pub phone: Phone,
    pub name: String,
}

/// Everything the drop page and `GET /api/v1/drops/{number}` show.
#[derive(Debug, Clone, Serialize)]
pub struct DropDetail {
    pub drop_id: DropId,
    pub drop_number: DropNumber,
    pub status: DropStatus,
    pub project_id: ProjectId,
    pub project: String,
    pub contractor: Option<Contractor>,
    pub round: i64,
    pub created_at: i64,
    pub activity_at: i64,
    pub unreviewed_at: Option<i64>,
    pub incomplete_at: Option<i64>,
    pub resubmitted_at: Option<i64>,
    pub approved_at: Option<i64>,
    pub feedback_sent_at: Option<i64>,
    pub steps: Vec<StepDetail>,
    pub history: Vec<HistoryEntry>,
    pub messages: Vec<MessageRow>,
}

impl DropDetail {
    pub fn rejected_steps(&self) -> impl Iterator<Item = &StepDetail> {
        self.steps.iter().filter(|s| s.verdict.is_rejection())
    }
}

impl Store {
    /// Finds or creates the contact for a phone number; a non-empty `name` fills an empty one.
    pub async fn upsert_contact(&self, phone: &Phone, name: &str) -> CoreResult<ContactId> {
        let mut tx = self.begin().await?;
        let (id, _) = tx.upsert_contact(phone, name, now_ms()).await?;
        tx.commit().await?;
        Ok(id)
    }

    // ---------------------------------------------------------------- drops

    /// Creates a drop (or reports that it exists). Returns the drop and whether it was created.
    pub async fn create_drop(
        &self,
        project: &Project,
        number: &DropNumber,
        contractor: Option<&Phone>,
        status: DropStatus,
        actor: &ActorRef,
    ) -> CoreResult<(DropSummary, bool)> {
        project.check_drop_number(number)?;
        let mut tx = self.begin().await?;
        let contact_id = match contractor {
            Some(p) => Some(tx.upsert_contact(p, "", now_ms()).await?.0),
            None => None,
        };
        let created = tx.create_drop(project, number, contact_id, status, actor, now_ms()).await?;
        tx.commit().await?;
        let summary = self.drop_summary(number).await?;
        Ok((summary, created))
    }

    /// The drop waiting longest for review, other than `except`.
    pub async fn next_for_review(&self, except: Option<&DropNumber>) -> CoreResult<Option<DropNumber>> {
        Ok(on_db!(self, pool => sqlx::query_scalar::<_, DropNumber>(
            "select drop_number from drop_job where status in ('unreviewed', 'resubmitted') and drop_number <> $1
             order by activity_at asc, drop_id asc limit 1")
            .bind(except.map_or("", DropNumber::as_str)).fetch_optional(pool).await?))
    }

    pub async fn drop_detail_by_id(&self, drop_id: DropId) -> CoreResult<DropDetail> {
        let number: Option<DropNumber> = on_db!(self, pool => sqlx::query_scalar("select drop_number from drop_job where drop_id = $1")
            .bind(drop_id).fetch_optional(pool).await?);
        let number = number.ok_or_else(|| CoreError::not_found("drop_not_found", format!("drop {drop_id}")))?;
        self.drop_detail(&number).await
    }

    pub async fn drop_detail(&self, number: &DropNumber) -> CoreResult<DropDetail> {
        let d: DropRow = on_db!(self, pool => sqlx::query_as::<_, Keyed<DropRow>>(&format!("{DROP_ROW_SELECT} where d.drop_number = $1"))
            .bind(number.as_str()).fetch_optional(pool).await?)
        .map(|k| k.0)
        .ok_or_else(|| CoreError::not_found("drop_not_found", format!("drop {number}")))?;
        // Seven independent reads. On PostgreSQL they run concurrently (each a round trip to
        // the server); SQLite answers in-process, where one connection after another is cheaper.
        let messages_sql = format!("{MESSAGE_SELECT} where m.drop_id = $1 order by m.message_id");
        macro_rules! detail_reads {
            ($pool:expr) => {
                (
                    sqlx::query_as::<_, ChecklistStep>(CHECKLIST_SELECT).bind(d.project_id).fetch_all($pool),
                    sqlx::query_as::<_, ReviewRow>(REVIEWS_SELECT).bind(d.drop_id).fetch_all($pool),
                    sqlx::query_as::<_, Keyed<PhotoInfo>>(PHOTOS_SELECT).bind(d.drop_id).fetch_all($pool),
                    sqlx::query_as::<_, HistoryEntry>(
                        "select at, actor, kind, detail from drop_event where drop_id = $1 order by event_id",
                    )
                    .bind(d.drop_id)
                    .fetch_all($pool),
                    sqlx::query_as::<_, Keyed<MessageRow>>(&messages_sql).bind(d.drop_id).fetch_all($pool),
                    sqlx::query_as::<_, Reason>("select code, label from review_reason").fetch_all($pool),
                    sqlx::query_as::<_, Keyed<PhotoCheck>>(CHECKS_SELECT).bind(d.drop_id).fetch_all($pool),
                )
            };
        }
        let (checklist, reviews, photos, history, messages, reasons, checks) = match &self.db {
            Db::Sqlite(pool) => {
                let (a, b, c, e, f, g, h) = detail_reads!(pool);
                (a.await?, b.await?, c.await?, e.await?, f.await?, g.await?, h.await?)
            }
            Db::Postgres(pool) => {
                let (a, b, c, e, f, g, h) = detail_reads!(pool);
                tokio::try_join!(a, b, c, e, f, g, h)?
            }
        };
        let photos = with_checks(Keyed::all(photos), Keyed::all(checks));
        assemble_detail(d, checklist, reviews, photos, history, Keyed::all(messages), &reasons)
    }

    // ---------------------------------------------------------------- bulk seeding (benchmarks)

    /// Inserts `count` drops quickly (for benchmarks): one transaction per 1 000 rows, counters kept.
    pub async fn seed_bulk_drops(&self, project: &Project, contractor: &Phone, count: i64, start: i64) -> CoreResult<()> {
        let contact_id = self.upsert_contact(contractor, "Bench Contractor").await?;
        let base = now_ms() - count * 1000;
        let mut i = 0;
        while i < count {
            let end = (i + 1000).min(count);
            {
                let mut tx = self.begin().await?;
                let out = on_tx!(&mut tx, c => {
                    for k in i..end {
                        let status = DropStatus::ALL[(k % 5) as usize];
                        sqlx::query("insert into drop_job (drop_number, project_id, contractor_id, status, round, created_at, activity_at)
                                     values ($1, $2, $3, $4, 1, $5, $5) on conflict (drop_number) do nothing")
                            .bind(format!("DR{:08}", start + k)).bind(project.project_id).bind(contact_id).bind(status.as_str()).bind(base + k * 1000)
                            .execute(&mut *c).await?;
                    }
                    sqlx::query("delete from drop_status_count").execute(&mut *c).await?;
                    sqlx::query("insert into drop_status_count (status, n) select status, count(*) from drop_job group by status").execute(&mut *c).await?;
                    for s in DropStatus::ALL {
                        sqlx::query("insert into drop_status_count (status, n) values ($1, 0) on conflict (status) do nothing").bind(s.as_str()).execute(&mut *c).await?;
                    }
                });
                tx.commit().await?;
                out
            };
            i = end;
        }
        Ok(())
    }
}

pub(crate) const DROP_ROW_SELECT: &str =
    "select d.drop_id, d.drop_number, d.status, d.project_id, p.name as project, c.phone as contractor_phone,
        c.name as contractor_name, d.round, d.created_at, d.activity_at, d.unreviewed_at, d.incomplete_at,
        d.resubmitted_at, d.approved_at, d.feedback_sent_at
    from drop_job d join project p on p.project_id = d.project_id
    left join contact c on c.contact_id = d.contractor_id";
pub(crate) const CHECKLIST_SELECT: &str = "select step_no, name, description from checklist_step where project_id = $1 order by step_no";
pub(crate) const REVIEWS_SELECT: &str =
    "select r.step_no, r.verdict, r.reason_code, r.note, u.email as reviewer, r.prev_verdict, r.prev_note, r.updated_at
    from step_review r left join app_user u on u.user_id = r.reviewer_id where r.drop_id = $1";
pub(crate) const PHOTOS_SELECT: &str = "select photo_id, step_no, sha256, mime_type, size_bytes, width, height, round, received_at
    from photo where drop_id = $1 order by received_at desc, photo_id desc";

/// Photos with their checks (both as read, for one drop).
pub(crate) fn with_checks(mut photos: Vec<PhotoInfo>, checks: Vec<PhotoCheck>) -> Vec<PhotoInfo> {
    for c in checks {
        if let Some(p) = photos.iter_mut().find(|p| p.photo_id == c.photo_id) {
            p.checks.push(c);
        }
    }
    photos
}

/// A drop's detail from its rows.
#[allow(clippy::too_many_arguments)]
pub(crate) fn assemble_detail(
    d: DropRow,
    checklist: Vec<ChecklistStep>,
    reviews: Vec<ReviewRow>,
    photos: Vec<PhotoInfo>,
    history: Vec<HistoryEntry>,
    messages: Vec<MessageRow>,
    reasons: &[Reason],
) -> CoreResult<DropDetail> {
    let status = d.status;
    let steps = checklist
        .into_iter()
        .map(|c| {
            let r = reviews.iter().find(|r| r.step_no == c.step_no);
            // A step without a review row has no verdict yet.
            let verdict = r.map_or(Verdict::Pending, |r| r.verdict);
            let reason = r.and_then(|r| r.reason_code.clone());
            StepDetail {
                number: c.step_no,
                name: c.name,
                description: c.description,
                verdict,
                reason_label: reason.as_ref().and_then(|code| reasons.iter().find(|x| &x.code == code).map(|x| x.label.clone())),
                reason,
                note: r.map(|r| r.note.clone()).unwrap_or_default(),
                reviewer: r.and_then(|r| r.reviewer.clone()),
                reviewed_at: r.map(|r| r.updated_at),
                previous_verdict: r.and_then(|r| r.prev_verdict),
                previous_note: r.and_then(|r| r.prev_note.clone()),
                photos: photos.iter().filter(|p| p.step_no == c.step_no).cloned().collect(),
            }
        })
        .collect();
    Ok(DropDetail {
        drop_id: d.drop_id,
        drop_number: d.drop_number,
        status,
        project_id: d.project_id,
        project: d.project,
        contractor: d.contractor_phone.map(|phone| Contractor { phone, name: d.contractor_name.unwrap_or_default() }),
        round: d.round,
        created_at: d.created_at,
        activity_at: d.activity_at,
        unreviewed_at: d.unreviewed_at,
        incomplete_at: d.incomplete_at,
        resubmitted_at: d.resubmitted_at,
        approved_at: d.approved_at,
        feedback_sent_at: d.feedback_sent_at,
        steps,
        history,
        messages,
    })
}
