//! Usable-photo checks as stored: a photo's measures (once per content, by SHA-256), each
//! filed photo's checks against its project's thresholds and its step's kind, open flags,
//! dismissing one.

pub use super::reuse::{ReuseIndex, Similar};
use super::*;
use crate::domain::{CheckKind, CheckResult};
use crate::pdq::{Pdq, PDQ_VERSION};
use crate::phash::{PHash, PHASH_VERSION};
use crate::photo_checks::{judge, Check, Measures, Thresholds, MEASURE_VERSION};

/// One check of a photo as stored and shown.
#[derive(Debug, Clone, Serialize, FromRow)]
pub struct PhotoCheck {
    pub photo_id: PhotoId,
    pub kind: CheckKind,
    pub result: CheckResult,
    pub value: f64,
    pub detail: String,
    /// When the flag stopped counting: a reviewer dismissed it, or a new photo replaced its photo.
    pub resolved_at: Option<i64>,
    pub resolved_by: Option<String>,
    /// For `reused`: the earlier photo, its drop and step.
    pub match_photo_id: Option<PhotoId>,
    pub match_drop: Option<String>,
    pub match_step: Option<i64>,
    /// For `vision`: the answer's status (`ok` | `retake` when the model answered, else
    /// `unknown`, `refused`, `truncated` or `failed`), the values read (a JSON object) and the model.
    pub vision_status: Option<String>,
    pub vision_values: Option<String>,
    pub vision_model: Option<String>,
}

impl PhotoCheck {
    /// A flag nobody has dismissed on a photo nothing has replaced.
    pub fn is_open_flag(&self) -> bool {
        self.result == CheckResult::Flag && self.resolved_at.is_none()
    }

    /// For `vision`: `ok` or `retake` when the model answered.
    pub fn suggestion(&self) -> Option<&str> {
        self.vision_status.as_deref().filter(|s| matches!(*s, "ok" | "retake"))
    }

    /// For `vision`: the values read, by label (null where not legible).
    pub fn read_values(&self) -> serde_json::Value {
        match self.vision_values.as_deref().map(serde_json::from_str) {
            None => serde_json::Value::Null,
            Some(Ok(v)) => v,
            Some(Err(e)) => {
                tracing::error!(photo = self.photo_id.get(), error = %e, "stored vision values do not read");
                serde_json::Value::Null
            }
        }
    }
}

row_key!(PhotoCheck => "photo_check"."photo_id");

pub(crate) const CHECKS_SELECT: &str = "select c.photo_id, c.kind, c.result, c.value, c.detail, c.resolved_at, c.resolved_by,
        c.match_photo_id, md.drop_number as match_drop, mp.step_no as match_step,
        v.status as vision_status, v.read_values as vision_values, v.model as vision_model
    from photo_check c join photo p on p.photo_id = c.photo_id
    left join photo mp on mp.photo_id = c.match_photo_id left join drop_job md on md.drop_id = mp.drop_id
    left join photo_vision v on v.photo_id = c.photo_id and c.kind = 'vision'
    where p.drop_id = $1 order by c.photo_id, c.kind";

/// The SQL condition "drop `d` has an open flag".
pub(crate) const HAS_OPEN_FLAG: &str = "exists (select 1 from photo fp join photo_check fc on fc.photo_id = fp.photo_id
    where fp.drop_id = d.drop_id and fc.result = 'flag' and fc.resolved_at is null)";

impl Tx<'_> {
    /// Keeps a photo's measures and hash (once per content: the same bytes measure the same).
    pub(crate) async fn record_measures(&mut self, sha256: &str, m: &Measures, pdq: Option<&Pdq>, phash: Option<&PHash>) -> CoreResult<()> {
        let (hash, quality) = (pdq.map(|p| p.hash.to_hex()), pdq.map(|p| i64::from(p.quality)));
        let version = pdq.map(|_| PDQ_VERSION);
        // The pHash's 64 bits kept as a signed integer (both backends' integers are signed).
        let (ph, ph_version) = (phash.map(|p| p.hash as i64), phash.map(|_| PHASH_VERSION));
        on_tx!(self, c => { sqlx::query(
            "insert into photo_measure (sha256, algo_version, long_side, mean_luma, bright_share, laplacian_var, best_tile_var,
                pdq_hash, pdq_quality, pdq_version, highlight_luma, phash, phash_version)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) on conflict (sha256) do nothing")
            .bind(sha256).bind(MEASURE_VERSION).bind(i64::from(m.long_side)).bind(m.mean_luma).bind(m.bright_share)
            .bind(m.laplacian_var).bind(m.best_tile_var).bind(hash).bind(quality).bind(version).bind(m.highlight_luma)
            .bind(ph).bind(ph_version).execute(&mut *c).await?; });
        Ok(())
    }

    /// Judges a photo just filed on a drop against its project's thresholds and its step's
    /// kind, and against the archive (the same bytes, or a PDQ match, on another drop: reused),
    /// storing every check; flags still open on the step's earlier photos are resolved (the new
    /// photo replaces them). A photo never measured gets no usable-photo checks.
    pub(crate) async fn judge_photo(&mut self, drop_id: DropId, photo_id: PhotoId, photo: &NewPhoto) -> CoreResult<()> {
        type Row = (i64, f64, f64, f64, f64, Option<i64>, Option<String>, Option<bool>, Option<f64>);
        let (step, now) = (photo.step.get(), photo.received_at);
        let row: Option<Row> = on_tx!(self, c => sqlx::query_as(
            "select m.long_side, m.mean_luma, m.bright_share, m.laplacian_var, m.best_tile_var, m.pdq_quality, p.photo_thresholds,
                (select s.screenshot from checklist_step s where s.project_id = d.project_id and s.step_no = $3), m.highlight_luma
             from photo_measure m, drop_job d join project p on p.project_id = d.project_id
             where m.sha256 = $1 and d.drop_id = $2 and m.algo_version = $4")
            .bind(&photo.sha256).bind(drop_id).bind(step).bind(MEASURE_VERSION).fetch_optional(&mut *c).await?);
        on_tx!(self, c => { sqlx::query(
            "update photo_check set resolved_at = $1, resolved_by = 'a new photo' where resolved_at is null and result = 'flag'
             and photo_id in (select photo_id from photo where drop_id = $2 and step_no = $3 and photo_id <> $4)")
            .bind(now).bind(drop_id).bind(step).bind(photo_id).execute(&mut *c).await?; });
        let screenshot = row.as_ref().and_then(|r| r.7).unwrap_or(false);
        let checks = match row {
            None => vec![],
            Some((long_side, mean_luma, bright_share, laplacian_var, best_tile_var, quality, overrides, screenshot, highlight_luma)) => {
                let m = Measures {
                    long_side: u32::try_from(long_side).unwrap_or(u32::MAX),
                    mean_luma,
                    highlight_luma,
                    bright_share,
                    laplacian_var,
                    best_tile_var,
                    pdq_quality: quality.and_then(|q| u8::try_from(q).ok()),
                };
                judge(&m, screenshot.unwrap_or(false), &project_thresholds(drop_id, overrides.as_deref()))
            }
        };
        let reused = self.reuse_check(drop_id, photo, screenshot).await?;
        for ch in &checks {
            self.insert_check(photo_id, ch, None).await?;
        }
        for (check, original) in reused {
            self.insert_check(photo_id, &check, original).await?;
        }
        if photo.vision {
            self.queue_vision(photo_id, now).await?;
        }
        Ok(())
    }

    async fn insert_check(&mut self, photo_id: PhotoId, ch: &Check, original: Option<PhotoId>) -> CoreResult<()> {
        on_tx!(self, c => { sqlx::query(
            "insert into photo_check (photo_id, kind, result, value, detail, match_photo_id) values ($1, $2, $3, $4, $5, $6)
             on conflict (photo_id, kind) do nothing")
            .bind(photo_id).bind(ch.kind.as_str()).bind(ch.result.as_str()).bind(ch.value).bind(&ch.detail).bind(original)
            .execute(&mut *c).await?; });
        Ok(())
    }

    /// The reuse check: the same bytes on another drop (distance 0), else the nearest PDQ
    /// match on another drop; a pass when the photo was looked up and nothing matched. Then,
    /// with nothing matched and hints on, the nearest pHash neighbour on another drop gives a
    /// "possibly reused" warning (never on a screenshot step: screens of one app look alike).
    async fn reuse_check(&mut self, drop_id: DropId, photo: &NewPhoto, screenshot: bool) -> CoreResult<Vec<(Check, Option<PhotoId>)>> {
        let exact: Option<PhotoId> = on_tx!(self, c => sqlx::query_scalar(
            "select photo_id from photo where sha256 = $1 and drop_id <> $2 order by photo_id limit 1")
            .bind(&photo.sha256).bind(drop_id).fetch_optional(&mut *c).await?);
        let found = match exact {
            Some(id) => Some((id, 0)),
            None => self.first_of_another_drop(drop_id, &photo.similar.same).await?,
        };
        let Some((original, distance)) = found else {
            let looked = photo.pdq.as_ref().is_some_and(|p| p.quality > crate::pdq::QUALITY_GATE);
            let mut out = vec![];
            if looked {
                let detail = "no earlier photo of another drop looks like it".to_string();
                out.push((Check { kind: CheckKind::Reused, result: CheckResult::Pass, value: 256.0, detail }, None));
            }
            if let Some((alike, d)) = self.first_of_another_drop(drop_id, &photo.similar.hinted).await?.filter(|_| !screenshot) {
                let detail = format!(
                    "possibly reused from {}; {d} of 64 bits apart on the crop-tolerant hash: a crop of it, or another shot of \
                     a scene like it — compare them)",
                    self.original_of(alike).await?
                );
                out.push((Check { kind: CheckKind::PossiblyReused, result: CheckResult::Warn, value: f64::from(d), detail }, Some(alike)));
            }
            return Ok(out);
        };
        let how = if distance == 0 { "the same file".to_string() } else { format!("{distance} of 256 bits apart") };
        let detail = format!("reused from {}; {how})", self.original_of(original).await?);
        Ok(vec![(Check { kind: CheckKind::Reused, result: CheckResult::Flag, value: f64::from(distance), detail }, Some(original))])
    }

    /// The first of `candidates` (nearest first) filed on another drop than `drop_id`.
    async fn first_of_another_drop(&mut self, drop_id: DropId, candidates: &[(PhotoId, u32)]) -> CoreResult<Option<(PhotoId, u32)>> {
        for &(id, d) in candidates {
            let other: Option<DropId> = on_tx!(self, c => sqlx::query_scalar("select drop_id from photo where photo_id = $1")
                .bind(id).fetch_optional(&mut *c).await?);
            if other.is_some_and(|o| o != drop_id) {
                return Ok(Some((id, d)));
            }
        }
        Ok(None)
    }

    /// "DR… step N (received …, contractor" for an earlier photo (the caller closes the bracket).
    async fn original_of(&mut self, original: PhotoId) -> CoreResult<String> {
        let (number, step, at, name, phone): (String, i64, i64, Option<String>, Option<String>) = on_tx!(self, c => sqlx::query_as(
            "select d.drop_number, p.step_no, p.received_at, ct.name, ct.phone from photo p join drop_job d on d.drop_id = p.drop_id
             left join contact ct on ct.contact_id = d.contractor_id where p.photo_id = $1")
            .bind(original).fetch_one(&mut *c).await?);
        let who = match (name.filter(|n| !n.is_empty()), phone) {
            (Some(n), Some(p)) => format!(", {n} · {p}"),
            (None, Some(p)) => format!(", {p}"),
            _ => String::new(),
        };
        Ok(format!("{number} step {step} (received {}{who}", crate::fmt_time(at)))
    }

    /// The open flags of a drop's photos received at or after `since`, by step, that the
    /// contractor is asked about: a reuse flag only where the project says so (else it is for
    /// the reviewer alone); a vision flag never (its own message asked already).
    pub(crate) async fn open_flags_since(&mut self, drop_id: DropId, since: i64) -> CoreResult<Vec<(i64, CheckKind)>> {
        let overrides: Option<String> = on_tx!(self, c => sqlx::query_scalar::<_, Option<String>>(
            "select p.photo_thresholds from drop_job d join project p on p.project_id = d.project_id where d.drop_id = $1")
            .bind(drop_id).fetch_optional(&mut *c).await?.flatten());
        let ask_reuse = project_thresholds(drop_id, overrides.as_deref()).ask_about_reuse;
        Ok(on_tx!(self, c => sqlx::query_as::<_, (i64, CheckKind)>(
            "select p.step_no, c.kind from photo_check c join photo p on p.photo_id = c.photo_id
             where p.drop_id = $1 and p.received_at >= $2 and c.result = 'flag' and c.resolved_at is null and c.kind <> 'vision'
               and (c.kind <> 'reused' or $3)
             order by p.step_no, c.kind")
            .bind(drop_id).bind(since).bind(ask_reuse).fetch_all(&mut *c).await?))
    }
}

/// A project's thresholds: its stored overrides over the defaults. Overrides that do not read
/// (never written so by Dropcheck, which checks them on save) are logged and the defaults used:
/// a photo is filed and checked whatever the project's settings hold.
fn project_thresholds(drop_id: DropId, overrides: Option<&str>) -> Thresholds {
    match overrides.map(serde_json::from_str::<Thresholds>) {
        None => Thresholds::default(),
        Some(Ok(t)) => t,
        Some(Err(e)) => {
            tracing::error!(drop = drop_id.get(), error = %e, "the project's photo thresholds do not read: the defaults apply");
            Thresholds::default()
        }
    }
}

impl Store {
    /// Dismisses an open flag (a reviewer judged the photo good enough). Dismissing one
    /// already resolved changes nothing.
    pub async fn dismiss_check(&self, number: &DropNumber, photo_id: PhotoId, kind: CheckKind, actor: &ActorRef) -> CoreResult<()> {
        let mut tx = self.begin().await?;
        let now = now_ms();
        let drop_id: Option<DropId> = on_tx!(&mut tx, c => sqlx::query_scalar(
            "select d.drop_id from photo p join drop_job d on d.drop_id = p.drop_id where p.photo_id = $1 and d.drop_number = $2")
            .bind(photo_id).bind(number.as_str()).fetch_optional(&mut *c).await?);
        let drop_id = drop_id.ok_or_else(|| CoreError::not_found("photo_not_found", format!("photo {photo_id} of drop {number}")))?;
        let changed = on_tx!(&mut tx, c => sqlx::query(
            "update photo_check set resolved_at = $1, resolved_by = $2 where photo_id = $3 and kind = $4 and resolved_at is null")
            .bind(now).bind(&actor.label).bind(photo_id).bind(kind.as_str()).execute(&mut *c).await?.rows_affected());
        if changed > 0 {
            on_tx!(&mut tx, c => {
                history!(c, drop_id, &actor.label, "check", format!("dismissed the \"{}\" flag of photo #{photo_id}", kind.as_str()));
            });
        }
        tx.commit().await
    }
}

/// A project's photo-check settings: its thresholds and the steps whose photo is a screenshot.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhotoCheckSettings {
    pub thresholds: Thresholds,
    /// Whether the thresholds are the project's own (else the defaults).
    pub overridden: bool,
    pub screenshot_steps: Vec<i64>,
}

impl Store {
    pub async fn photo_check_settings(&self, project_id: ProjectId) -> CoreResult<PhotoCheckSettings> {
        let (overrides, steps): (Option<Option<String>>, Vec<i64>) = on_db!(self, pool => (
            sqlx::query_scalar("select photo_thresholds from project where project_id = $1").bind(project_id).fetch_optional(pool).await?,
            sqlx::query_scalar("select step_no from checklist_step where project_id = $1 and screenshot order by step_no")
                .bind(project_id).fetch_all(pool).await?,
        ));
        let overrides = overrides.ok_or_else(|| CoreError::not_found("project_not_found", format!("project {project_id}")))?;
        Ok(PhotoCheckSettings {
            thresholds: overrides.as_deref().map_or_else(Thresholds::default, |o| project_thresholds(DropId(0), Some(o))),
            overridden: overrides.is_some(),
            screenshot_steps: steps,
        })
    }

    /// Sets a project's thresholds (`None`: back to the defaults) and its screenshot steps
    /// (every other step is a photo). Applies to photos filed from now on.
    pub async fn set_photo_check_settings(
        &self,
        project_id: ProjectId,
        thresholds: Option<&Thresholds>,
        screenshot_steps: &[i64],
    ) -> CoreResult<()> {
        if let Some(t) = thresholds {
            t.validate()?;
        }
        let json = thresholds.map(serde_json::to_string).transpose().map_err(|e| CoreError::Internal(e.to_string()))?;
        let mut tx = self.begin().await?;
        let steps: Vec<i64> = on_tx!(&mut tx, c => sqlx::query_scalar("select step_no from checklist_step where project_id = $1")
            .bind(project_id).fetch_all(&mut *c).await?);
        if let Some(bad) = screenshot_steps.iter().find(|s| !steps.contains(s)) {
            return Err(InputError::new("invalid_step", format!("the project has no step {bad}")).into());
        }
        let found = on_tx!(&mut tx, c => {
            let n = sqlx::query("update project set photo_thresholds = $1 where project_id = $2")
                .bind(&json).bind(project_id).execute(&mut *c).await?.rows_affected();
            for s in &steps {
                sqlx::query("update checklist_step set screenshot = $1 where project_id = $2 and step_no = $3 and screenshot <> $1")
                    .bind(screenshot_steps.contains(s)).bind(project_id).bind(s).execute(&mut *c).await?;
            }
            n
        });
        if found == 0 {
            return Err(CoreError::not_found("project_not_found", format!("project {project_id}")));
        }
        tx.commit().await
    }
}
