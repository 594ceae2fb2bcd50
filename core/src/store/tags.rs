//! Contact tags: names unique without regard to case; adding or removing one records
//! `contact.tag_added` / `contact.tag_removed` and runs their rules in the same transaction
//! (a rule's own tag changes carry its event's depth + 1: the loop guard).

use super::automation_run::{NewEvent, RunSubject};
use super::*;
use crate::automation::Event;

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
            let name: String = on_tx!(self, c => sqlx::query_scalar("select name from contact where contact_id = $1").bind(contact_id).fetch_one(&mut *c).await?);
            let ctx = serde_json::json!({"phone": phone.as_str(), "name": name, "tag": tag});
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

    /// The tags of several contacts, by phone (the contacts list).
    pub async fn tags_of(&self, phones: &[&str]) -> CoreResult<std::collections::HashMap<String, Vec<String>>> {
        let mut out: std::collections::HashMap<String, Vec<String>> = Default::default();
        for chunk in phones.chunks(500) {
            let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "select c.phone, t.name from contact_tag ct join tag t on t.tag_id = ct.tag_id join contact c on c.contact_id = ct.contact_id
                 where c.phone in ({}) order by t.name_key",
                marks.join(", ")
            );
            let rows: Vec<(String, String)> = on_db!(self, pool => {
                let mut q = sqlx::query_as(&sql);
                for p in chunk {
                    q = q.bind(*p);
                }
                q.fetch_all(pool).await?
            });
            for (phone, tag) in rows {
                out.entry(phone).or_default().push(tag);
            }
        }
        Ok(out)
    }

    /// Makes a contact's tags exactly `tags` (the API's `PUT`): each one added or removed
    /// records its event and runs its rules, in one transaction.
    pub async fn set_contact_tags(&self, phone: &Phone, tags: &[String], by: &str) -> CoreResult<Vec<String>> {
        let wanted: Vec<String> = tags.iter().map(|t| check_tag(t)).collect::<Result<_, _>>()?;
        let have = self.contact_tags(phone).await?;
        let mut tx = self.begin().await?;
        let cause = TagCause { by, rule: None, depth: 0 };
        for t in &have {
            if !wanted.iter().any(|w| w.eq_ignore_ascii_case(t)) {
                tx.set_tag(phone, t, false, &cause).await?;
            }
        }
        for t in &wanted {
            tx.set_tag(phone, t, true, &cause).await?;
        }
        tx.commit().await?;
        self.contact_tags(phone).await
    }
}
