//! CSV imports: the file is kept (`contact_import`) so the pages can map its columns, preview
//! and run it in steps; rows are applied 500 to a transaction, each like an API change
//! (events recorded; their rules run only when the import asks), and the report with the
//! rejected rows is stored for the download.

use serde::Serialize;

use super::*;
use crate::contacts::import::{self, CsvFile};
pub use crate::contacts::import::{ImportMapping, ImportMode};

/// What an import did (or, as a preview, would do).
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct ImportReport {
    pub import_id: i64,
    pub file_name: String,
    pub dry_run: bool,
    pub rows: usize,
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// Existing contacts left alone (`mode: skip`).
    pub skipped: usize,
    pub rejected: usize,
    /// Each rejected row's line and reason.
    pub rejected_rows: Vec<RejectedRow>,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct RejectedRow {
    pub line: u64,
    pub reason: String,
}

const CHUNK: usize = 500;

impl Store {
    /// Keeps an uploaded file for an import; returns its id. The file must read as CSV.
    pub async fn stage_import(&self, file_name: &str, text: &str, by: &str) -> CoreResult<i64> {
        import::read_csv(text)?;
        let name: String = file_name.chars().filter(|c| !c.is_control()).take(200).collect();
        Ok(on_db!(self, pool => sqlx::query_scalar(
            "insert into contact_import (file_name, created_by, created_at, csv) values ($1, $2, $3, $4) returning import_id")
            .bind(if name.trim().is_empty() { "contacts.csv" } else { name.trim() }).bind(by).bind(now_ms()).bind(text).fetch_one(pool).await?))
    }

    /// A staged file: its name, its rows read, and the report once it ran.
    pub async fn import_file(&self, id: i64) -> CoreResult<(String, CsvFile, Option<ImportReport>)> {
        let row: Option<(String, String, Option<String>)> = on_db!(self, pool => sqlx::query_as(
            "select file_name, csv, report from contact_import where import_id = $1").bind(id).fetch_optional(pool).await?);
        let (name, text, report) = row.ok_or_else(|| CoreError::not_found("import_not_found", format!("no import {id}")))?;
        let report = report
            .map(|r| serde_json::from_str(&r))
            .transpose()
            .map_err(|e| CoreError::Internal(format!("import {id}: report unreadable: {e}")))?;
        Ok((name, import::read_csv(&text)?, report))
    }

    /// Runs a staged import with `mapping` (or, `dry_run`, says what it would do and writes
    /// nothing). Re-running a file creates no contact twice: rows are matched by number.
    pub async fn run_import(&self, id: i64, mapping: &ImportMapping, dry_run: bool, by: &str) -> CoreResult<ImportReport> {
        let (file_name, file, _) = self.import_file(id).await?;
        let defs = self.attribute_defs().await?;
        let (rows, rejected) = import::plan(&file, mapping, &defs)?;
        let mut report = ImportReport { import_id: id, file_name: file_name.clone(), dry_run, rows: file.rows.len(), ..Default::default() };
        let source = format!("import {file_name} ({by})");
        let cause = TagCause { by: &source, rule: None, depth: 0 };
        for chunk in rows.chunks(CHUNK) {
            let mut tx = self.begin().await?;
            for row in chunk {
                let existing: Option<i64> = on_tx!(&mut tx, c => sqlx::query_scalar("select contact_id from contact where phone = $1")
                    .bind(row.phone.as_str()).fetch_optional(&mut *c).await?);
                let update = match existing {
                    None => row.update.clone(),
                    Some(_) if mapping.mode == ImportMode::Skip => {
                        report.skipped += 1;
                        continue;
                    }
                    Some(cid) if mapping.mode == ImportMode::FillBlanks => tx.blanks_only(cid, &row.update).await?,
                    Some(_) => row.update.clone(),
                };
                let change = tx.apply_contact(&row.phone, &update, &defs, &cause, mapping.fire_rules).await?;
                match (change.created, change.changed.is_empty()) {
                    (true, _) => report.created += 1,
                    (false, false) => report.updated += 1,
                    (false, true) => report.unchanged += 1,
                }
            }
            if dry_run {
                tx.rollback().await?;
            } else {
                tx.commit().await?;
            }
        }
        report.rejected = rejected.len();
        report.rejected_rows = rejected.iter().map(|r| RejectedRow { line: r.line, reason: r.reason.clone() }).collect();
        if !dry_run {
            let rejected_file = import::rejected_csv(&file.headers, &rejected)?;
            let json = serde_json::to_string(&report).map_err(|e| CoreError::Internal(e.to_string()))?;
            on_db!(self, pool => { sqlx::query("update contact_import set report = $1, rejected_csv = $2 where import_id = $3")
                .bind(&json).bind(&rejected_file).bind(id).execute(pool).await?; });
            tracing::info!(
                import = id,
                created = report.created,
                updated = report.updated,
                rejected = report.rejected,
                "contacts imported"
            );
        }
        Ok(report)
    }

    /// The rejected rows of an import that ran, as CSV (the file's columns, `line`, `reason`).
    pub async fn import_rejected_csv(&self, id: i64) -> CoreResult<String> {
        let row: Option<Option<String>> = on_db!(self, pool => sqlx::query_scalar("select rejected_csv from contact_import where import_id = $1")
            .bind(id).fetch_optional(pool).await?);
        row.ok_or_else(|| CoreError::not_found("import_not_found", format!("no import {id}")))?
            .ok_or_else(|| CoreError::conflict("import_not_run", "This import has not run yet; its rejected rows come with its report."))
    }
}

impl Tx<'_> {
    /// `u` narrowed to what contact `cid` does not have yet (tags are added to its own).
    async fn blanks_only(&mut self, cid: i64, u: &crate::contacts::ContactUpdate) -> CoreResult<crate::contacts::ContactUpdate> {
        let have = self.contact_in(cid).await?;
        let mut out = crate::contacts::ContactUpdate::default();
        out.name = u.name.clone().filter(|_| have.name.is_empty());
        out.birthday = u.birthday.filter(|_| have.birthday.is_none());
        out.time_zone = u.time_zone.clone().filter(|_| have.time_zone.is_none());
        out.consent = u.consent.filter(|_| have.consent.status == crate::contacts::ConsentStatus::Unknown);
        out.attributes =
            u.attributes.iter().filter(|(k, _)| !have.attributes.contains_key(*k)).map(|(k, v)| (k.clone(), v.clone())).collect();
        out.tags = u.tags.as_ref().map(|t| {
            let mut all = have.tags.clone();
            all.extend(t.iter().filter(|n| !have.tags.iter().any(|h| h.eq_ignore_ascii_case(n.trim()))).cloned());
            all
        });
        Ok(out)
    }
}
