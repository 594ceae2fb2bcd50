//! Contacts in the store: profiles (consent, birthday, time zone, typed attributes, tags),
//! the list with its filters, and every change recording its domain events —
//! `contact.created`, `contact.updated`, `contact.opted_out`, the tag events — and running
//! their rules in the change's own transaction.

use serde_json::Value;
use std::collections::BTreeMap;

use super::automation_run::{NewEvent, RunSubject};
use super::drop_list::escape_like;
use super::*;
use crate::automation::Event;
use crate::contacts::{contact_context, AttrType, AttributeDef, Birthday, Consent, ConsentStatus, Contact, ContactUpdate};

mod birthdays;
mod campaigns;
mod import;
mod tags;
pub use campaigns::CampaignView;
pub use import::{ImportMapping, ImportMode, ImportReport};
pub use tags::{check_tag, TagCause};

const CONTACT_SELECT: &str = "select c.contact_id, c.phone, c.name, c.opted_out, c.muted_types, c.last_inbound_at, c.created_at,
    c.birthday_month, c.birthday_day, c.birthday_year, c.time_zone, c.consent, c.consent_at, c.consent_source from contact c";

#[derive(FromRow)]
struct ContactRow {
    contact_id: i64,
    phone: Phone,
    name: String,
    opted_out: i64,
    muted_types: Option<String>,
    last_inbound_at: Option<i64>,
    created_at: i64,
    birthday_month: Option<i64>,
    birthday_day: Option<i64>,
    birthday_year: Option<i64>,
    time_zone: Option<String>,
    consent: String,
    consent_at: Option<i64>,
    consent_source: Option<String>,
}

impl ContactRow {
    fn contact(self, attributes: BTreeMap<String, Value>, tags: Vec<String>) -> Contact {
        let birthday = match (self.birthday_month, self.birthday_day) {
            (Some(m), Some(d)) => Some(Birthday { month: m as u8, day: d as u8, year: self.birthday_year.map(|y| y as i32) }),
            _ => None,
        };
        Contact {
            phone: self.phone,
            name: self.name,
            opted_out: self.opted_out != 0,
            muted_types: crate::notify::parse_muted(self.muted_types.as_deref()),
            last_inbound_at: self.last_inbound_at,
            created_at: self.created_at,
            consent: Consent {
                status: ConsentStatus::parse(&self.consent).unwrap_or_default(),
                at: self.consent_at,
                source: self.consent_source,
            },
            birthday,
            time_zone: self.time_zone,
            attributes,
            tags,
        }
    }
}

/// The contacts list's filters (blank: no filter).
#[derive(Debug, Clone, Default)]
pub struct ContactFilter {
    /// Part of the number or the name.
    pub q: Option<String>,
    pub tag: Option<String>,
    /// An attribute's key and value (the value as stored: `true`, `12.5`, an option).
    pub attribute: Option<(String, String)>,
    pub consent: Option<ConsentStatus>,
    pub offset: i64,
    pub limit: i64,
}

/// What a change did to a contact.
#[derive(Debug, Clone, Default)]
pub struct ContactChange {
    pub created: bool,
    /// The fields that changed (`name`, `consent`, `birthday`, `time_zone`, `muted_types`,
    /// attribute keys; tags have events of their own).
    pub changed: Vec<String>,
}

const ATTRIBUTE_DEFS: &str = "select key, label, type, options from attribute_def order by key";

/// Definitions as stored: (key, label, type, options one per line).
fn defs_of(rows: Vec<(String, String, String, String)>) -> CoreResult<Vec<AttributeDef>> {
    rows.into_iter()
        .map(|(key, label, kind, options)| {
            let options = options.lines().filter(|l| !l.is_empty()).map(str::to_string).collect();
            Ok(AttributeDef { key, label, kind: AttrType::parse(&kind)?, options })
        })
        .collect()
}

fn no_contact(phone: &Phone) -> CoreError {
    CoreError::not_found("contact_not_found", format!("no contact {}", phone.as_str()))
}

impl Store {
    /// The attribute definitions, by key.
    pub async fn attribute_defs(&self) -> CoreResult<Vec<AttributeDef>> {
        defs_of(on_db!(self, pool => sqlx::query_as(ATTRIBUTE_DEFS).fetch_all(pool).await?))
    }

    /// Adds an attribute or changes its label and options. Its type changes only while no
    /// contact has a value for it; an enum keeps every option a contact has.
    pub async fn save_attribute_def(&self, def: &AttributeDef) -> CoreResult<AttributeDef> {
        def.check()?;
        let existing = self.attribute_defs().await?.into_iter().find(|d| d.key == def.key);
        if let Some(old) = &existing {
            let used: Vec<String> = on_db!(self, pool => sqlx::query_scalar("select distinct value from contact_attribute where key = $1 limit 1000")
                .bind(&def.key).fetch_all(pool).await?);
            if old.kind != def.kind && !used.is_empty() {
                return Err(CoreError::conflict(
                    "attribute_in_use",
                    format!("contacts have {} values; its type stays {}", def.key, old.kind.as_str()),
                ));
            }
            if let Some(v) = used.iter().find(|v| def.kind == AttrType::Enum && def.canonical(&Value::from(v.as_str())).is_err()) {
                return Err(CoreError::conflict("attribute_in_use", format!("contacts have {} = {v}; keep that option", def.key)));
            }
        }
        let options = def.options.iter().map(|o| o.trim()).collect::<Vec<_>>().join("\n");
        on_db!(self, pool => { sqlx::query(
            "insert into attribute_def (key, label, type, options, created_at) values ($1, $2, $3, $4, $5)
             on conflict (key) do update set label = excluded.label, type = excluded.type, options = excluded.options")
            .bind(&def.key).bind(def.label.trim()).bind(def.kind.as_str()).bind(&options).bind(now_ms()).execute(pool).await?; });
        self.attribute_defs().await?.into_iter().find(|d| d.key == def.key).ok_or_else(|| CoreError::Internal("attribute not saved".into()))
    }

    /// Removes an attribute and every contact's value for it.
    pub async fn delete_attribute_def(&self, key: &str) -> CoreResult<()> {
        let gone = on_db!(self, pool => {
            sqlx::query("delete from contact_attribute where key = $1").bind(key).execute(pool).await?;
            sqlx::query("delete from attribute_def where key = $1").bind(key).execute(pool).await?.rows_affected()
        });
        if gone == 0 {
            return Err(CoreError::not_found("attribute_not_found", format!("no attribute {key}")));
        }
        Ok(())
    }

    /// A page of contacts, newest first, and how many match in all.
    pub async fn contacts(&self, f: &ContactFilter) -> CoreResult<(Vec<Contact>, i64)> {
        super::drop_list::check_search("q", f.q.as_deref())?;
        let mut conds: Vec<String> = vec![];
        let mut args: Vec<Arg> = vec![];
        let p = |args: &mut Vec<Arg>, a: Arg| {
            args.push(a);
            format!("${}", args.len())
        };
        if let Some(q) = f.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
            let ph = p(&mut args, Arg::S(format!("%{}%", escape_like(&q.to_lowercase()))));
            conds.push(format!("(lower(c.phone) like {ph} escape '\\' or lower(c.name) like {ph} escape '\\')"));
        }
        if let Some(t) = f.tag.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
            let ph = p(&mut args, Arg::S(t.to_lowercase()));
            conds.push(format!(
                "exists (select 1 from contact_tag ct join tag t on t.tag_id = ct.tag_id where ct.contact_id = c.contact_id and t.name_key = {ph})"
            ));
        }
        if let Some((k, v)) = &f.attribute {
            let (pk, pv) = (p(&mut args, Arg::S(k.clone())), p(&mut args, Arg::S(v.trim().to_string())));
            conds.push(format!("exists (select 1 from contact_attribute ca where ca.contact_id = c.contact_id and ca.key = {pk} and lower(ca.value) = lower({pv}))"));
        }
        if let Some(s) = f.consent {
            let ph = p(&mut args, Arg::S(s.as_str().into()));
            conds.push(format!("c.consent = {ph}"));
        }
        let where_ = if conds.is_empty() { String::new() } else { format!(" where {}", conds.join(" and ")) };
        let count_sql = format!("select count(*) from contact c{where_}");
        let total: i64 = on_db!(self, pool => bind_args!(sqlx::query_scalar(&count_sql), &args).fetch_one(pool).await?);
        let lim = p(&mut args, Arg::I(f.limit.clamp(1, 1000)));
        let off = p(&mut args, Arg::I(f.offset.max(0)));
        let sql = format!("{CONTACT_SELECT}{where_} order by c.contact_id desc limit {lim} offset {off}");
        let rows: Vec<ContactRow> = on_db!(self, pool => bind_args!(sqlx::query_as(&sql), &args).fetch_all(pool).await?);
        Ok((self.assemble(rows).await?, total))
    }

    /// One contact with its attributes and tags.
    pub async fn contact(&self, phone: &Phone) -> CoreResult<Contact> {
        let row: Option<ContactRow> = on_db!(self, pool => sqlx::query_as(&format!("{CONTACT_SELECT} where c.phone = $1"))
            .bind(phone.as_str()).fetch_optional(pool).await?);
        let row = row.ok_or_else(|| no_contact(phone))?;
        Ok(self.assemble(vec![row]).await?.remove(0))
    }

    /// Rows with their attributes (typed by their definitions) and tags.
    async fn assemble(&self, rows: Vec<ContactRow>) -> CoreResult<Vec<Contact>> {
        let defs = self.attribute_defs().await?;
        let mut attrs: BTreeMap<i64, BTreeMap<String, Value>> = BTreeMap::new();
        let mut tags: BTreeMap<i64, Vec<String>> = BTreeMap::new();
        for chunk in rows.chunks(500) {
            let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let ids: Vec<Arg> = chunk.iter().map(|r| Arg::I(r.contact_id)).collect();
            let sql =
                format!("select contact_id, key, value from contact_attribute where contact_id in ({}) order by key", marks.join(", "));
            let found: Vec<(i64, String, String)> = on_db!(self, pool => bind_args!(sqlx::query_as(&sql), &ids).fetch_all(pool).await?);
            for (id, key, value) in found {
                let typed = defs.iter().find(|d| d.key == key).map(|d| d.typed(&value)).unwrap_or(Value::String(value));
                attrs.entry(id).or_default().insert(key, typed);
            }
            let sql = format!(
                "select ct.contact_id, t.name from contact_tag ct join tag t on t.tag_id = ct.tag_id where ct.contact_id in ({}) order by t.name_key",
                marks.join(", ")
            );
            let found: Vec<(i64, String)> = on_db!(self, pool => bind_args!(sqlx::query_as(&sql), &ids).fetch_all(pool).await?);
            for (id, name) in found {
                tags.entry(id).or_default().push(name);
            }
        }
        Ok(rows
            .into_iter()
            .map(|r| {
                let id = r.contact_id;
                r.contact(attrs.remove(&id).unwrap_or_default(), tags.remove(&id).unwrap_or_default())
            })
            .collect())
    }

    /// Creates the contact if needed and applies `u` in one transaction: every field checked
    /// first (a bad value changes nothing), then `contact.created`, `contact.updated` (with
    /// the fields that changed), `contact.opted_out` and the tag events recorded, each
    /// running its rules. `by` says who (consent's source, the tags' "added by").
    pub async fn save_contact(&self, phone: &Phone, u: &ContactUpdate, by: &str) -> CoreResult<(Contact, ContactChange)> {
        let defs = self.check_update(u).await?;
        let mut tx = self.begin().await?;
        let change = tx.apply_contact(phone, u, &defs, &TagCause { by, rule: None, depth: 0 }, true).await?;
        tx.commit().await?;
        Ok((self.contact(phone).await?, change))
    }

    /// Checks an update against what the store knows (muted types name templates; each
    /// attribute is defined and its value suits its type). Returns the definitions.
    pub(crate) async fn check_update(&self, u: &ContactUpdate) -> CoreResult<Vec<AttributeDef>> {
        u.check()?;
        if let Some(types) = &u.muted_types {
            let known: Vec<String> = self.templates().await?.into_iter().map(|t| t.name).collect();
            if let Some(bad) = types.iter().find(|t| !known.contains(t)) {
                return Err(InputError::new("invalid_message_type", format!("'{bad}' is not a message type (a template name)")).into());
            }
            if types.iter().any(|t| crate::outbox::is_opt_confirmation(t)) {
                return Err(InputError::new("invalid_message_type", "the STOP/START confirmations cannot be muted").into());
            }
        }
        let defs = self.attribute_defs().await?;
        for (k, v) in &u.attributes {
            let def = defs.iter().find(|d| &d.key == k).ok_or_else(|| {
                InputError::new("invalid_attribute", format!("there is no attribute {k} (define it first: /api/v1/contact-attributes)"))
            })?;
            if !v.is_null() {
                def.canonical(v).map_err(|e| InputError::new("invalid_attribute", e))?;
            }
        }
        Ok(defs)
    }
}

impl Tx<'_> {
    /// [`Store::save_contact`] inside a caller's transaction (an import, a rule's
    /// `set_attribute`); `u` is checked already ([`Store::check_update`]). With `fire` false
    /// the events are recorded but no rule runs (an import that does not ask for them).
    pub(crate) async fn apply_contact(
        &mut self,
        phone: &Phone,
        u: &ContactUpdate,
        defs: &[AttributeDef],
        cause: &TagCause<'_>,
        fire: bool,
    ) -> CoreResult<ContactChange> {
        let now = now_ms();
        let (contact_id, created) = self.insert_contact(phone, u.name.as_deref().unwrap_or("").trim(), now).await?;
        let contact_id = contact_id.get();
        let row: ContactRow = on_tx!(self, c => sqlx::query_as(&format!("{CONTACT_SELECT} where c.contact_id = $1")).bind(contact_id).fetch_one(&mut *c).await?);
        let before = row.contact(BTreeMap::new(), vec![]);
        let mut changed: Vec<String> = vec![];
        if let Some(name) = u.name.as_deref().map(str::trim).filter(|n| *n != before.name) {
            on_tx!(self, c => { sqlx::query("update contact set name = $1 where contact_id = $2").bind(name).bind(contact_id).execute(&mut *c).await?; });
            changed.push("name".into());
        }
        let consent = u.next_consent(before.consent.status);
        if consent != before.consent.status {
            self.set_consent(contact_id, consent, cause.by, now).await?;
            changed.push("consent".into());
        }
        if let Some(types) = u.muted_types.as_ref().filter(|t| **t != before.muted_types) {
            on_tx!(self, c => { sqlx::query("update contact set muted_types = $1 where contact_id = $2").bind(types.join(" ")).bind(contact_id).execute(&mut *c).await?; });
            changed.push("muted_types".into());
        }
        if let Some(b) = u.birthday.filter(|b| *b != before.birthday) {
            on_tx!(self, c => { sqlx::query("update contact set birthday_month = $1, birthday_day = $2, birthday_year = $3 where contact_id = $4")
                .bind(b.map(|b| i64::from(b.month))).bind(b.map(|b| i64::from(b.day))).bind(b.and_then(|b| b.year).map(i64::from))
                .bind(contact_id).execute(&mut *c).await?; });
            changed.push("birthday".into());
        }
        if let Some(tz) = u.time_zone.as_ref().map(|t| t.as_ref().map(|t| t.trim().to_string())).filter(|t| *t != before.time_zone) {
            on_tx!(self, c => { sqlx::query("update contact set time_zone = $1 where contact_id = $2").bind(&tz).bind(contact_id).execute(&mut *c).await?; });
            changed.push("time_zone".into());
        }
        for (k, v) in &u.attributes {
            let Some(def) = defs.iter().find(|d| &d.key == k) else { continue };
            let old: Option<String> = on_tx!(self, c => sqlx::query_scalar("select value from contact_attribute where contact_id = $1 and key = $2")
                .bind(contact_id).bind(k).fetch_optional(&mut *c).await?);
            let new = if v.is_null() { None } else { Some(def.canonical(v).map_err(|e| InputError::new("invalid_attribute", e))?) };
            if old == new {
                continue;
            }
            on_tx!(self, c => match &new {
                Some(val) => { sqlx::query("insert into contact_attribute (contact_id, key, value) values ($1, $2, $3)
                    on conflict (contact_id, key) do update set value = excluded.value").bind(contact_id).bind(k).bind(val).execute(&mut *c).await?; }
                None => { sqlx::query("delete from contact_attribute where contact_id = $1 and key = $2").bind(contact_id).bind(k).execute(&mut *c).await?; }
            });
            changed.push(k.clone());
        }
        if created {
            self.contact_event_caused("contact.created", contact_id, &[], cause.depth, cause.rule, fire).await?;
        } else if !changed.is_empty() {
            self.contact_event_caused("contact.updated", contact_id, &changed, cause.depth, cause.rule, fire).await?;
        }
        if consent == ConsentStatus::OptedOut && before.consent.status != ConsentStatus::OptedOut {
            self.contact_event_caused("contact.opted_out", contact_id, &changed, cause.depth, cause.rule, fire).await?;
        }
        if let Some(wanted) = &u.tags {
            let have: Vec<String> = on_tx!(self, c => sqlx::query_scalar(
                "select t.name from contact_tag ct join tag t on t.tag_id = ct.tag_id where ct.contact_id = $1").bind(contact_id).fetch_all(&mut *c).await?);
            for t in &have {
                if !wanted.iter().any(|w| w.trim().eq_ignore_ascii_case(t)) {
                    self.set_tag(phone, t, false, cause).await?;
                }
            }
            for t in wanted.iter().filter(|w| !have.iter().any(|h| h.eq_ignore_ascii_case(w.trim()))) {
                self.set_tag(phone, t, true, cause).await?;
            }
        }
        Ok(ContactChange { created, changed })
    }

    /// Inserts the contact unless the number is one (the caller records `contact.created`
    /// once the contact is complete). Returns its id and whether it was created.
    pub(crate) async fn insert_contact(&mut self, phone: &Phone, name: &str, now: i64) -> CoreResult<(ContactId, bool)> {
        let inserted: Option<ContactId> = on_tx!(self, c => sqlx::query_scalar(
            "insert into contact (phone, name, created_at) values ($1, $2, $3) on conflict (phone) do nothing returning contact_id")
            .bind(phone.as_str()).bind(name).bind(now).fetch_optional(&mut *c).await?);
        if let Some(id) = inserted {
            return Ok((id, true));
        }
        let id: ContactId = on_tx!(self, c => sqlx::query_scalar("select contact_id from contact where phone = $1").bind(phone.as_str()).fetch_one(&mut *c).await?);
        Ok((id, false))
    }

    /// Sets a contact's consent (and `opted_out`, which every send checks) with when and how.
    pub(crate) async fn set_consent(&mut self, contact_id: i64, status: ConsentStatus, source: &str, now: i64) -> CoreResult<()> {
        on_tx!(self, c => { sqlx::query("update contact set consent = $1, opted_out = $2, consent_at = $3, consent_source = $4 where contact_id = $5")
            .bind(status.as_str()).bind(i64::from(status == ConsentStatus::OptedOut)).bind(now).bind(source).bind(contact_id)
            .execute(&mut *c).await?; });
        Ok(())
    }

    /// Records a contact event with the contact's context (and `changed`), and runs its rules.
    pub(crate) async fn contact_event(
        &mut self,
        kind: &'static str,
        contact_id: i64,
        changed: &[String],
        depth: i64,
        fire: bool,
    ) -> CoreResult<()> {
        self.contact_event_caused(kind, contact_id, changed, depth, None, fire).await
    }

    /// [`Tx::contact_event`] caused by a rule's action: that rule does not run for it.
    pub(crate) async fn contact_event_caused(
        &mut self,
        kind: &'static str,
        contact_id: i64,
        changed: &[String],
        depth: i64,
        caused_by: Option<i64>,
        fire: bool,
    ) -> CoreResult<()> {
        let contact = self.contact_in(contact_id).await?;
        let ctx = contact_context(&contact, &[("changed", Value::from(changed.to_vec()))]);
        let origin = if depth > 0 { "automation" } else { "system" };
        let ev = NewEvent { kind, subject: contact.phone.as_str(), payload: &ctx, origin, depth, idempotency_key: None };
        let Some(event_id) = self.record_event(&ev).await? else { return Ok(()) };
        if !fire {
            return Ok(());
        }
        let event = match kind {
            "contact.created" => Event::ContactCreated,
            "contact.opted_out" => Event::ContactOptedOut,
            _ => Event::ContactUpdated { changed },
        };
        let s = RunSubject {
            subject: contact.phone.to_string(),
            contact_phone: Some(contact.phone.to_string()),
            event_id: Some(event_id),
            ..Default::default()
        };
        Box::pin(self.run_rules_caused(&event, &ctx, &s, depth, caused_by)).await?;
        Ok(())
    }

    /// The attribute definitions, read inside the transaction.
    pub(crate) async fn attribute_defs_in(&mut self) -> CoreResult<Vec<AttributeDef>> {
        defs_of(on_tx!(self, c => sqlx::query_as(ATTRIBUTE_DEFS).fetch_all(&mut *c).await?))
    }

    /// A contact with its attributes and tags, read inside the transaction.
    pub(crate) async fn contact_in(&mut self, contact_id: i64) -> CoreResult<Contact> {
        let row: ContactRow = on_tx!(self, c => sqlx::query_as(&format!("{CONTACT_SELECT} where c.contact_id = $1")).bind(contact_id).fetch_one(&mut *c).await?);
        let defs = self.attribute_defs_in().await?;
        let values: Vec<(String, String)> = on_tx!(self, c => sqlx::query_as("select key, value from contact_attribute where contact_id = $1 order by key")
            .bind(contact_id).fetch_all(&mut *c).await?);
        let tags: Vec<String> = on_tx!(self, c => sqlx::query_scalar(
            "select t.name from contact_tag ct join tag t on t.tag_id = ct.tag_id where ct.contact_id = $1 order by t.name_key")
            .bind(contact_id).fetch_all(&mut *c).await?);
        let mut attrs = BTreeMap::new();
        for (k, v) in values {
            let typed = defs.iter().find(|d| d.key == k).map(|d| d.typed(&v)).unwrap_or(Value::String(v));
            attrs.insert(k, typed);
        }
        Ok(row.contact(attrs, tags))
    }
}
