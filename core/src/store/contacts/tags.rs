//! Contact tags: names unique without regard to case; adding or removing one records
//! `contact.tag_added` / `contact.tag_removed` and runs their rules in the same transaction
//! (a rule's own tag changes carry its event's depth + 1: the loop guard).

use super::*;
use crate::automation::Event;
use crate::store::automation_run::{NewEvent, RunSubject};

/// A tag name as given: trimmed, 1–50 characters, no commas (lists are comma-separated).
pub fn check_tag(name: &str) -> Result<String, InputError> {
    let t = name.trim();
    if t.is_empty() || t.chars().count() > 50 || t.contains(',') || t.chars().any(char::is_control) {
        return Err(InputError::new("invalid_tag", format!("'{t}' is not a tag: 1–50 characters, no commas")));
    }
    Ok(t.to_string())
}

/// What caused a tag change: who (for the contact's tag list) and, for a rule's action, the
/// rule and its event's depth.
pub struct TagCause<'a> {
    pub by: &'a str,
    pub rule: Option<i64>,
    pub depth: i64,
}

impl Tx<'_> {
    /// Adds (`add`) or removes a tag on a contact (created if the number is new). When it
    /// changed anything, the event is recorded and its rules run. Returns whether it changed.
    pub async fn set_tag(&mut self, phone: &Phone, tag: &str, add: bool, cause: &TagCause<'_>) -> CoreResult<bool> {
        let tag = check_tag(tag)?;
        let now = now_ms();
        let (contact_id, _) = self.upsert_contact(phone, "", now).await?;
        let contact_id = contact_id.get();
        let changed = on_tx!(self, c => {
            if add {
                let tag_id: i64 = sqlx::query_scalar(
                    "insert into tag (name, name_key, created_at) values ($1, $2, $3)
                     on conflict (name_key) do update set name_key = excluded.name_key returning tag_id")
                    .bind(&tag).bind(tag.to_lowercase()).bind(now).fetch_one(&mut *c).await?;
                sqlx::query("insert into contact_tag (contact_id, tag_id, added_by, added_at) values ($1, $2, $3, $4) on conflict (contact_id, tag_id) do nothing")
                    .bind(contact_id).bind(tag_id).bind(cause.by).bind(now).execute(&mut *c).await?.rows_affected() == 1
            } else {
                sqlx::query("delete from contact_tag where contact_id = $1 and tag_id in (select tag_id from tag where name_key = $2)")
                    .bind(contact_id).bind(tag.to_lowercase()).execute(&mut *c).await?.rows_affected() > 0
            }
        });
        if changed {
            let kind = if add { "contact.tag_added" } else { "contact.tag_removed" };
            let contact = self.contact_in(contact_id).await?;
            let ctx = crate::contacts::contact_context(&contact, &[("tag", tag.as_str().into())]);
            let origin = if cause.rule.is_some() { "automation" } else { "api" };
            let ev = NewEvent { kind, subject: phone.as_str(), payload: &ctx, origin, depth: cause.depth, idempotency_key: None };
            if let Some(event_id) = self.record_event(&ev).await? {
                let s = RunSubject {
                    subject: phone.to_string(),
                    contact_phone: Some(phone.to_string()),
                    event_id: Some(event_id),
                    ..Default::default()
                };
                // Boxed: a rule's tag action runs rules again (bounded by the depth guard).
                Box::pin(self.run_rules_caused(&Event::ContactTag { added: add, tag: &tag }, &ctx, &s, cause.depth, cause.rule)).await?;
            }
        }
        Ok(changed)
    }
}

impl Store {
    /// A contact's tags, by name.
    pub async fn contact_tags(&self, phone: &Phone) -> CoreResult<Vec<String>> {
        Ok(on_db!(self, pool => sqlx::query_scalar(
            "select t.name from contact_tag ct join tag t on t.tag_id = ct.tag_id join contact c on c.contact_id = ct.contact_id
             where c.phone = $1 order by t.name_key").bind(phone.as_str()).fetch_all(pool).await?))
    }

    /// Makes a contact's tags exactly `tags` (each one added or removed records its event
    /// and runs its rules, in one transaction).
    pub async fn set_contact_tags(&self, phone: &Phone, tags: &[String], by: &str) -> CoreResult<Vec<String>> {
        let u = crate::contacts::ContactUpdate { tags: Some(tags.to_vec()), ..Default::default() };
        Ok(self.save_contact(phone, &u, by).await?.0.tags)
    }
}

impl Store {
    /// Every tag name in use, by name (the contacts list's filter).
    pub async fn all_tags(&self) -> CoreResult<Vec<String>> {
        Ok(
            on_db!(self, pool => sqlx::query_scalar("select name from tag t where exists (select 1 from contact_tag ct where ct.tag_id = t.tag_id) order by name_key")
            .fetch_all(pool).await?),
        )
    }
}
