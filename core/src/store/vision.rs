//! The vision check's queue and answers as stored: a job per photo filed while a vision model
//! is configured (queued in the photo's own transaction, so none is lost), claimed with a
//! lease by the vision workers of any replica, retried with backoff, and finished with the
//! model's answer kept in `photo_vision` and shown as the photo's `vision` check.

use super::*;
use crate::domain::{CheckKind, CheckResult};
use crate::vision::{Answer, StepQuestion};
use std::sync::atomic::Ordering;

/// A claimed job: the photo, and what to ask about it.
#[derive(Debug, Clone)]
pub struct VisionJob {
    pub photo_id: PhotoId,
    /// Attempts including this one.
    pub attempts: i64,
    pub sha256: String,
    pub question: StepQuestion,
}

/// What became of a job.
#[derive(Debug, Clone, PartialEq)]
pub enum VisionOutcome {
    /// The model answered in the schema.
    Answered { answer: Answer, model: String, latency_ms: i64 },
    /// No usable answer, final: `status` is `unknown`, `refused`, `truncated` or `failed`.
    NoAnswer { status: &'static str, error: String, model: String, latency_ms: Option<i64> },
    /// Try again at `at` (429, 5xx, a timeout).
    Retry { at: i64, error: String },
}

/// The vision answer of a photo, as the drop page and the API show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VisionView {
    /// `ok` | `retake` | `unknown` | `refused` | `truncated` | `failed`.
    pub status: String,
    pub confidence: Option<f64>,
    pub problems: Vec<String>,
    /// By the value's label: what was read, or null.
    pub values: std::collections::BTreeMap<String, Option<String>>,
    pub model: String,
    pub latency_ms: Option<i64>,
}

impl VisionView {
    /// `ok` or `retake` when the model answered.
    pub fn suggestion(&self) -> Option<&str> {
        matches!(self.status.as_str(), "ok" | "retake").then_some(self.status.as_str())
    }
}

impl Store {
    /// Whether photos filed from now on get a vision job (a vision model is configured).
    pub fn set_vision_checks(&self, on: bool) {
        self.memory.vision.store(on, Ordering::Relaxed);
    }

    pub fn vision_checks(&self) -> bool {
        self.memory.vision.load(Ordering::Relaxed)
    }

    /// Claims up to `limit` due jobs for `lease_ms`. A job whose worker died (its lease ran
    /// out) is due again.
    pub async fn claim_vision_jobs(&self, now: i64, lease_ms: i64, limit: i64) -> CoreResult<Vec<VisionJob>> {
        let lock = match self.db {
            Db::Sqlite(_) => "",
            Db::Postgres(_) => " for update skip locked",
        };
        let claim = format!(
            "update vision_job set state = 'running', lease_until = $1, attempts = attempts + 1
             where photo_id in (select photo_id from vision_job
                                where (state = 'queued' and next_at <= $2) or (state = 'running' and lease_until < $2)
                                order by next_at, photo_id limit $3{lock})
             returning photo_id"
        );
        let mut tx = self.begin().await?;
        let ids: Vec<PhotoId> = on_tx!(&mut tx, c => sqlx::query_scalar(&claim).bind(now + lease_ms).bind(now).bind(limit.clamp(1, 100)).fetch_all(&mut *c).await?);
        tx.commit().await?;
        let mut jobs = Vec::with_capacity(ids.len());
        for id in ids {
            type Row = (i64, String, i64, String, String, Option<String>, Option<String>);
            let row: Option<Row> = on_db!(self, pool => sqlx::query_as(
                "select j.attempts, p.sha256, s.step_no, s.name, s.description, s.vision_prompt, s.vision_values
                 from vision_job j join photo p on p.photo_id = j.photo_id join drop_job d on d.drop_id = p.drop_id
                 join checklist_step s on s.project_id = d.project_id and s.step_no = p.step_no
                 where j.photo_id = $1")
                .bind(id).fetch_optional(pool).await?);
            let Some((attempts, sha256, number, name, description, prompt, values)) = row else {
                // The photo was moved to a step the project no longer has: nothing to ask.
                self.finish_vision(
                    id,
                    &VisionOutcome::NoAnswer {
                        status: "failed",
                        error: "the photo's step is not in its project's checklist".into(),
                        model: String::new(),
                        latency_ms: None,
                    },
                    now,
                )
                .await?;
                continue;
            };
            let values = step_values(id, values.as_deref());
            jobs.push(VisionJob { photo_id: id, attempts, sha256, question: StepQuestion { number, name, description, prompt, values } });
        }
        Ok(jobs)
    }

    /// When the next queued job is due (tests drain the queue with it).
    pub async fn next_vision_due(&self) -> CoreResult<Option<i64>> {
        Ok(on_db!(self, pool => sqlx::query_scalar::<_, Option<i64>>(
            "select min(case when state = 'running' then lease_until else next_at end) from vision_job where state <> 'done'")
            .fetch_one(pool).await?))
    }

    /// Records what became of a job: a retry, or its answer (or why there is none) with the
    /// photo's `vision` check, in one transaction. An answer suggesting a retake is a flag on a
    /// step set to send such answers back (its `vision_auto_retake`), else a warning. A job
    /// already done (another worker took it over and finished) is left as it is.
    pub async fn finish_vision(&self, photo_id: PhotoId, outcome: &VisionOutcome, now: i64) -> CoreResult<()> {
        let mut tx = self.begin().await?;
        let (status, error, model, latency, answer) = match outcome {
            VisionOutcome::Retry { at, error } => {
                on_tx!(&mut tx, c => { sqlx::query(
                    "update vision_job set state = 'queued', next_at = $1, lease_until = null, last_error = $2 where photo_id = $3 and state <> 'done'")
                    .bind(at).bind(error).bind(photo_id).execute(&mut *c).await?; });
                return tx.commit().await;
            }
            VisionOutcome::Answered { answer, model, latency_ms } => {
                (if answer.retake() { "retake" } else { "ok" }, None, model, Some(*latency_ms), Some(answer))
            }
            VisionOutcome::NoAnswer { status, error, model, latency_ms } => (*status, Some(error.as_str()), model, *latency_ms, None),
        };
        let problems = answer.map(|a| serde_json::to_string(&a.problems)).transpose().map_err(|e| CoreError::Internal(e.to_string()))?;
        let values = answer.map(|a| serde_json::to_string(&a.values)).transpose().map_err(|e| CoreError::Internal(e.to_string()))?;
        let auto: Option<bool> = on_tx!(&mut tx, c => sqlx::query_scalar(
            "select s.vision_auto_retake from photo p join drop_job d on d.drop_id = p.drop_id
             join checklist_step s on s.project_id = d.project_id and s.step_no = p.step_no where p.photo_id = $1")
            .bind(photo_id).fetch_optional(&mut *c).await?);
        let (result, value, detail) = match answer {
            Some(a) if a.retake() && auto.unwrap_or(false) => (CheckResult::Flag, a.confidence, describe(a, model, latency)),
            Some(a) if a.retake() => (CheckResult::Warn, a.confidence, describe(a, model, latency)),
            Some(a) => (CheckResult::Pass, a.confidence, describe(a, model, latency)),
            None => (CheckResult::Warn, 0.0, format!("no answer from the vision model ({status}): {}", error.unwrap_or(""))),
        };
        let send_back = result == CheckResult::Flag;
        on_tx!(&mut tx, c => {
            let done = sqlx::query("update vision_job set state = 'done', lease_until = null, last_error = $1 where photo_id = $2 and state <> 'done'")
                .bind(error).bind(photo_id).execute(&mut *c).await?.rows_affected();
            if done == 1 {
                sqlx::query(
                    "insert into photo_vision (photo_id, status, shows_subject, legible, confidence, problems, read_values, model, latency_ms, error, finished_at)
                     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) on conflict (photo_id) do nothing")
                    .bind(photo_id).bind(status).bind(answer.map(|a| a.shows_expected_subject)).bind(answer.map(|a| a.legible))
                    .bind(answer.map(|a| a.confidence)).bind(&problems).bind(&values).bind(model).bind(latency).bind(error).bind(now)
                    .execute(&mut *c).await?;
                sqlx::query(
                    "insert into photo_check (photo_id, kind, result, value, detail) values ($1, $2, $3, $4, $5) on conflict (photo_id, kind) do nothing")
                    .bind(photo_id).bind(CheckKind::Vision.as_str()).bind(result.as_str()).bind(value).bind(&detail).execute(&mut *c).await?;
            }
        });
        if let (true, Some(a)) = (send_back, answer) {
            tx.queue_vision_retake(photo_id, a, now).await?;
        }
        tx.commit().await
    }

    /// The vision answers of a drop's photos.
    pub async fn drop_vision(&self, drop_id: DropId) -> CoreResult<Vec<(PhotoId, VisionView)>> {
        type Row = (PhotoId, String, Option<f64>, Option<String>, Option<String>, String, Option<i64>);
        let rows: Vec<Row> = on_db!(self, pool => sqlx::query_as(
            "select v.photo_id, v.status, v.confidence, v.problems, v.read_values, v.model, v.latency_ms
             from photo_vision v join photo p on p.photo_id = v.photo_id where p.drop_id = $1 order by v.photo_id")
            .bind(drop_id).fetch_all(pool).await?);
        rows.into_iter()
            .map(|(id, status, confidence, problems, values, model, latency_ms)| {
                let bad = |e: serde_json::Error| CoreError::Internal(format!("photo_vision of photo {id}: {e}"));
                Ok((
                    id,
                    VisionView {
                        status,
                        confidence,
                        problems: problems.as_deref().map(serde_json::from_str).transpose().map_err(bad)?.unwrap_or_default(),
                        values: values.as_deref().map(serde_json::from_str).transpose().map_err(bad)?.unwrap_or_default(),
                        model,
                        latency_ms,
                    },
                ))
            })
            .collect()
    }
}

impl Tx<'_> {
    /// Asks the contractor to take a photo again (template `vision_retake`), once per photo
    /// (its idempotency key), on a step that sends the model's retake suggestions back.
    async fn queue_vision_retake(&mut self, photo_id: PhotoId, a: &Answer, now: i64) -> CoreResult<()> {
        type Row = (Option<DropId>, String, Option<String>, i64, String, Option<String>, Option<i64>);
        let row: Option<Row> = on_tx!(self, c => sqlx::query_as(
            "select d.drop_id, d.drop_number, ct.phone, p.step_no, s.name, t.body, t.enabled
             from photo p join drop_job d on d.drop_id = p.drop_id left join contact ct on ct.contact_id = d.contractor_id
             join checklist_step s on s.project_id = d.project_id and s.step_no = p.step_no
             left join message_template t on t.name = 'vision_retake' where p.photo_id = $1")
            .bind(photo_id).fetch_optional(&mut *c).await?);
        let Some((drop_id, number, Some(phone), step, step_name, body, enabled)) = row else { return Ok(()) };
        if enabled == Some(0) {
            return Ok(());
        }
        let body = match body {
            Some(b) => b,
            None => crate::templates::shipped("vision_retake")
                .ok_or_else(|| CoreError::Internal("no template vision_retake".into()))?
                .to_string(),
        };
        let vars = minijinja::context! { drop_number => number, step, step_name, problems => a.problems.clone() };
        let text = crate::templates::render("vision_retake", &body, vars.clone())?;
        let vars = crate::outbox::vars_json(&vars)?;
        on_tx!(self, c => { sqlx::query(
            "insert into message (direction, phone, body, template, template_vars, drop_id, status, attempts, next_attempt_at,
                idempotency_key, created_at, updated_at)
             values ('out', $1, $2, 'vision_retake', $3, $4, 'queued', 0, $5, $6, $5, $5) on conflict (idempotency_key) do nothing")
            .bind(phone).bind(text).bind(vars).bind(drop_id).bind(now).bind(format!("vision-retake:{photo_id}"))
            .execute(&mut *c).await?; });
        Ok(())
    }

    /// Queues the vision check of a photo just filed.
    pub(crate) async fn queue_vision(&mut self, photo_id: PhotoId, now: i64) -> CoreResult<()> {
        on_tx!(self, c => { sqlx::query(
            "insert into vision_job (photo_id, state, attempts, next_at, created_at) values ($1, 'queued', 0, $2, $2) on conflict (photo_id) do nothing")
            .bind(photo_id).bind(now).execute(&mut *c).await?; });
        Ok(())
    }
}

/// A step's values to read, as stored (a JSON array of labels). A stored list that does not
/// read (Dropcheck writes it checked) is logged and no values are asked for.
fn step_values(photo_id: PhotoId, stored: Option<&str>) -> Vec<String> {
    match stored.map(serde_json::from_str::<Vec<String>>) {
        None => vec![],
        Some(Ok(v)) => v,
        Some(Err(e)) => {
            tracing::error!(photo = photo_id.get(), error = %e, "the step's vision values do not read: none asked for");
            vec![]
        }
    }
}

/// The answer for people: the suggestion, the problems and the values read.
fn describe(a: &Answer, model: &str, latency_ms: Option<i64>) -> String {
    let mut s = match (a.shows_expected_subject, a.legible) {
        (true, true) => "shows the step".to_string(),
        (false, _) => "suggests a retake: does not show what the step asks for".to_string(),
        (true, false) => "suggests a retake: not legible".to_string(),
    };
    if !a.problems.is_empty() {
        s.push_str(&format!("; problems: {}", a.problems.join(", ")));
    }
    let read: Vec<String> = a.values.iter().map(|(k, v)| format!("{k} {}", v.as_deref().unwrap_or("not legible"))).collect();
    if !read.is_empty() {
        s.push_str(&format!("; read: {}", read.join(", ")));
    }
    let took = latency_ms.map(|ms| format!(", {:.1} s", ms as f64 / 1000.0)).unwrap_or_default();
    s.push_str(&format!(" (confidence {:.2}, {model}{took})", a.confidence));
    s
}

/// A step's vision settings as an admin sets them under Settings → Projects.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct StepVision {
    pub step: i64,
    /// The question put to the model instead of the one built from the step's name and description.
    pub prompt: Option<String>,
    /// Values to read off the photo, by label (e.g. "Meter reading").
    pub values: Vec<String>,
    /// A "retake" answer goes back to the contractor at once (off by default).
    pub auto_retake: bool,
}

impl StepVision {
    /// Refuses settings that cannot be asked: an overlong question, too many or odd values.
    pub fn validate(&self) -> Result<(), InputError> {
        let bad = |m: String| Err(InputError::new("invalid_vision_settings", format!("step {}: {m}", self.step)));
        if self.prompt.as_deref().is_some_and(|p| p.chars().count() > 1000) {
            return bad("the question is at most 1000 characters".into());
        }
        if self.values.len() > 8 {
            return bad("at most 8 values to read".into());
        }
        let mut keys = std::collections::HashSet::new();
        for v in &self.values {
            if v.trim().is_empty() || v.chars().count() > 60 || !v.chars().any(|c| c.is_ascii_alphanumeric()) {
                return bad(format!("\"{v}\" is not a value's name (1-60 characters with a letter or digit)"));
            }
            if !keys.insert(crate::vision::value_key(v)) {
                return bad(format!("\"{v}\" is named twice"));
            }
        }
        Ok(())
    }
}

impl Store {
    /// A project's vision settings, one entry per step.
    pub async fn step_vision(&self, project_id: ProjectId) -> CoreResult<Vec<StepVision>> {
        let rows: Vec<(i64, Option<String>, Option<String>, bool)> = on_db!(self, pool => sqlx::query_as(
            "select step_no, vision_prompt, vision_values, vision_auto_retake from checklist_step where project_id = $1 order by step_no")
            .bind(project_id).fetch_all(pool).await?);
        Ok(rows
            .into_iter()
            .map(|(step, prompt, values, auto_retake)| StepVision {
                step,
                prompt,
                values: step_values(PhotoId(0), values.as_deref()),
                auto_retake,
            })
            .collect())
    }

    /// Sets one step's vision settings (applies to photos checked from now on).
    pub async fn set_step_vision(&self, project_id: ProjectId, v: &StepVision) -> CoreResult<()> {
        v.validate()?;
        let prompt = v.prompt.as_deref().map(str::trim).filter(|p| !p.is_empty());
        let values: Vec<&str> = v.values.iter().map(|s| s.trim()).collect();
        let values =
            (!values.is_empty()).then(|| serde_json::to_string(&values)).transpose().map_err(|e| CoreError::Internal(e.to_string()))?;
        let n = on_db!(self, pool => sqlx::query(
            "update checklist_step set vision_prompt = $1, vision_values = $2, vision_auto_retake = $3 where project_id = $4 and step_no = $5")
            .bind(prompt).bind(values).bind(v.auto_retake).bind(project_id).bind(v.step).execute(pool).await?.rows_affected());
        if n == 0 {
            return Err(CoreError::not_found("step_not_found", format!("project {project_id} has no step {}", v.step)));
        }
        Ok(())
    }
}
