//! CSV imports: the file is kept (`contact_import`) so the pages can map its columns, preview
//! and run it in steps; rows are applied 500 to a transaction, each like an API change
//! (events recorded; their rules run only when the import asks), and the report with the
//! rejected rows is stored for the download.

use serde::Serialize;
use std::collections::HashMap;

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
            let mut bulk =
                Bulk { endpoints: tx.webhook_subscriptions().await?, tags: HashMap::new(), source: &source, fire: mapping.fire_rules };
            let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!("select phone, contact_id from contact where phone in ({})", marks.join(", "));
            let phones: Vec<Arg> = chunk.iter().map(|r| Arg::S(r.phone.to_string())).collect();
            let known: HashMap<String, i64> =
                on_tx!(&mut tx, c => bind_args!(sqlx::query_as::<_, (String, i64)>(&sql), &phones).fetch_all(&mut *c).await?)
                    .into_iter()
                    .collect();
            for row in chunk {
                let existing = known.get(row.phone.as_str()).copied();
                if existing.is_none() && tx.import_new(&mut bulk, &row.phone, &row.update, &defs).await? {
                    report.created += 1;
                    continue;
                }
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

/// What an import chunk reads once: the webhook subscriptions and the tags' ids.
struct Bulk<'a> {
    endpoints: Vec<(i64, Vec<String>)>,
    tags: HashMap<String, i64>,
    source: &'a str,
    fire: bool,
}

impl Tx<'_> {
    /// A new contact from an import in a few statements: the row with its profile, its
    /// attributes and tags each in one insert, then `contact.created` and a
    /// `contact.tag_added` per tag recorded (and their rules run when the import asks) —
    /// what [`Tx::apply_contact`] does, without reading back what it just wrote. `false`
    /// when the number became a contact meanwhile (the caller then applies it as a change).
    async fn import_new(
        &mut self,
        bulk: &mut Bulk<'_>,
        phone: &Phone,
        u: &crate::contacts::ContactUpdate,
        defs: &[AttributeDef],
    ) -> CoreResult<bool> {
        use crate::contacts::{Consent, ConsentStatus, Contact};
        let now = now_ms();
        let consent = u.next_consent(ConsentStatus::Unknown);
        let birthday = u.birthday.flatten();
        let time_zone = u.time_zone.clone().flatten();
        let name = u.name.as_deref().unwrap_or("").trim().to_string();
        let given = consent != ConsentStatus::Unknown;
        let id: Option<i64> = on_tx!(self, c => sqlx::query_scalar(
            "insert into contact (phone, name, created_at, birthday_month, birthday_day, birthday_year, time_zone, consent, consent_at, consent_source, opted_out)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) on conflict (phone) do nothing returning contact_id")
            .bind(phone.as_str()).bind(&name).bind(now).bind(birthday.map(|b| i64::from(b.month))).bind(birthday.map(|b| i64::from(b.day)))
            .bind(birthday.and_then(|b| b.year).map(i64::from)).bind(&time_zone).bind(consent.as_str()).bind(given.then_some(now))
            .bind(given.then_some(bulk.source)).bind(i64::from(consent == ConsentStatus::OptedOut)).fetch_optional(&mut *c).await?);
        let Some(id) = id else { return Ok(false) };
        let mut attributes = BTreeMap::new();
        let mut args = vec![];
        for (k, v) in u.attributes.iter().filter(|(_, v)| !v.is_null()) {
            let Some(def) = defs.iter().find(|d| &d.key == k) else { continue };
            let stored = def.canonical(v).map_err(|e| InputError::new("invalid_attribute", e))?;
            attributes.insert(k.clone(), def.typed(&stored));
            args.extend([Arg::I(id), Arg::S(k.clone()), Arg::S(stored)]);
        }
        if !args.is_empty() {
            let rows: Vec<String> = (0..args.len() / 3).map(|i| format!("(${}, ${}, ${})", i * 3 + 1, i * 3 + 2, i * 3 + 3)).collect();
            let sql = format!("insert into contact_attribute (contact_id, key, value) values {}", rows.join(", "));
            on_tx!(self, c => { bind_args!(sqlx::query(&sql), &args).execute(&mut *c).await?; });
        }
        let mut tags: Vec<String> = vec![];
        for t in u.tags.iter().flatten() {
            let t = check_tag(t)?;
            if tags.iter().any(|h| h.eq_ignore_ascii_case(&t)) {
                continue;
            }
            let key = t.to_lowercase();
            let tag_id = match bulk.tags.get(&key) {
                Some(i) => *i,
                None => {
                    let i: i64 = on_tx!(self, c => sqlx::query_scalar(
                        "insert into tag (name, name_key, created_at) values ($1, $2, $3)
                         on conflict (name_key) do update set name_key = excluded.name_key returning tag_id")
                        .bind(&t).bind(&key).bind(now).fetch_one(&mut *c).await?);
                    bulk.tags.insert(key, i);
                    i
                }
            };
            on_tx!(self, c => { sqlx::query("insert into contact_tag (contact_id, tag_id, added_by, added_at) values ($1, $2, $3, $4) on conflict do nothing")
                .bind(id).bind(tag_id).bind(bulk.source).bind(now).execute(&mut *c).await?; });
            tags.push(t);
        }
        let contact = Contact {
            phone: phone.clone(),
            name,
            opted_out: consent == ConsentStatus::OptedOut,
            muted_types: vec![],
            last_inbound_at: None,
            created_at: now,
            consent: Consent { status: consent, at: given.then_some(now), source: given.then(|| bulk.source.to_string()) },
            birthday,
            time_zone,
            attributes,
            tags: tags.clone(),
        };
        let created = contact_context(&contact, &[("changed", Value::from(Vec::<String>::new()))]);
        self.import_event(bulk, "contact.created", phone, &created, &Event::ContactCreated).await?;
        for t in &tags {
            let ctx = contact_context(&contact, &[("tag", t.as_str().into())]);
            self.import_event(bulk, "contact.tag_added", phone, &ctx, &Event::ContactTag { added: true, tag: t }).await?;
        }
        Ok(true)
    }

    /// An imported contact's event: recorded, sent to the endpoints that take it, and its
    /// rules run when the import asks.
    async fn import_event(&mut self, bulk: &Bulk<'_>, kind: &str, phone: &Phone, ctx: &Value, event: &Event<'_>) -> CoreResult<()> {
        let event_id: i64 = on_tx!(self, c => sqlx::query_scalar(
            "insert into domain_event (type, subject, payload, origin, depth, occurred_at) values ($1, $2, $3, 'import', 0, $4) returning event_id")
            .bind(kind).bind(phone.as_str()).bind(ctx.to_string()).bind(now_ms()).fetch_one(&mut *c).await?);
        let targets: Vec<i64> = bulk.endpoints.iter().filter(|(_, types)| types.iter().any(|t| t == kind)).map(|(id, _)| *id).collect();
        self.queue_webhook_to(&crate::webhooks::new_message_id(), Some(event_id), kind, ctx, &targets).await?;
        if bulk.fire {
            let s = super::super::automation_run::RunSubject {
                subject: phone.to_string(),
                contact_phone: Some(phone.to_string()),
                event_id: Some(event_id),
                ..Default::default()
            };
            self.run_rules(event, ctx, &s, 0).await?;
        }
        Ok(())
    }

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
