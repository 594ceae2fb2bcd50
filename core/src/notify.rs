//! The notification service the predecessor offered, with its API: templated messages to
//! contacts by message type, their history and statistics, and the contacts with their
//! notification preferences (opt-out, muted message types), which every send honours.

use crate::ids::MessageId;
use serde::Serialize;
use sqlx::FromRow;
use std::collections::BTreeMap;

use crate::domain::Phone;
use crate::error::{CoreError, CoreResult, InputError};
use crate::outbox::Outgoing;
use crate::store::{on_db, on_tx, Db, Store};

/// A contact as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Contact {
    pub phone: Phone,
    pub name: String,
    pub opted_out: bool,
    /// Message types (template names) this contact does not want.
    pub muted_types: Vec<String>,
    pub last_inbound_at: Option<i64>,
    pub created_at: i64,
}

#[derive(FromRow)]
struct ContactRow {
    phone: Phone,
    name: String,
    opted_out: i64,
    muted_types: Option<String>,
    last_inbound_at: Option<i64>,
    created_at: i64,
}

impl From<ContactRow> for Contact {
    fn from(r: ContactRow) -> Self {
        Contact {
            phone: r.phone,
            name: r.name,
            opted_out: r.opted_out != 0,
            muted_types: parse_muted(r.muted_types.as_deref()),
            last_inbound_at: r.last_inbound_at,
            created_at: r.created_at,
        }
    }
}

/// The stored muted list: template names separated by spaces.
pub fn parse_muted(raw: Option<&str>) -> Vec<String> {
    raw.unwrap_or("").split_whitespace().map(str::to_string).collect()
}

/// What an API caller may change about a contact.
#[derive(Debug, Clone, Default)]
pub struct ContactUpdate {
    pub name: Option<String>,
    pub opted_out: Option<bool>,
    pub muted_types: Option<Vec<String>>,
}

/// Delivery statistics over a period (`GET /api/notifications/statistics`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Statistics {
    pub days: i64,
    pub total: i64,
    pub by_status: BTreeMap<String, i64>,
    pub by_message_type: BTreeMap<String, BTreeMap<String, i64>>,
    /// Shares of the total, 0–1: delivered (or read), read, failed (or undelivered).
    pub delivery_rate: f64,
    pub read_rate: f64,
    pub failure_rate: f64,
}

const CONTACT_SELECT: &str = "select phone, name, opted_out, muted_types, last_inbound_at, created_at from contact";

impl Store {
    pub async fn contacts(&self, limit: i64) -> CoreResult<Vec<Contact>> {
        let rows = on_db!(self, pool => sqlx::query_as::<_, ContactRow>(&format!("{CONTACT_SELECT} order by contact_id desc limit $1"))
            .bind(limit.clamp(1, 1000)).fetch_all(pool).await?);
        Ok(rows.into_iter().map(Contact::from).collect())
    }

    pub async fn contact(&self, phone: &Phone) -> CoreResult<Contact> {
        on_db!(self, pool => sqlx::query_as::<_, ContactRow>(&format!("{CONTACT_SELECT} where phone = $1"))
            .bind(phone.as_str()).fetch_optional(pool).await?)
        .map(Contact::from)
        .ok_or_else(|| CoreError::not_found("contact_not_found", format!("no contact {}", phone.as_str())))
    }

    /// Creates the contact if needed and applies the changes. Muted types must name templates.
    pub async fn save_contact(&self, phone: &Phone, u: &ContactUpdate) -> CoreResult<Contact> {
        if let Some(name) = &u.name {
            if name.chars().count() > 120 {
                return Err(InputError::new("invalid_name", "a contact name has at most 120 characters").into());
            }
        }
        let muted = match &u.muted_types {
            Some(types) => {
                let known: Vec<String> = self.templates().await?.into_iter().map(|t| t.name).collect();
                if let Some(bad) = types.iter().find(|t| !known.contains(t)) {
                    return Err(InputError::new("invalid_message_type", format!("'{bad}' is not a message type (a template name)")).into());
                }
                if types.iter().any(|t| crate::outbox::is_opt_confirmation(t)) {
                    return Err(InputError::new("invalid_message_type", "the STOP/START confirmations cannot be muted").into());
                }
                Some(types.join(" "))
            }
            None => None,
        };
        self.upsert_contact(phone, "").await?;
        {
            let mut tx = self.begin().await?;
            let out = on_tx!(&mut tx, c => {
                if let Some(name) = &u.name {
                    sqlx::query("update contact set name = $1 where phone = $2").bind(name.trim()).bind(phone.as_str()).execute(&mut *c).await?;
                }
                if let Some(out) = u.opted_out {
                    sqlx::query("update contact set opted_out = $1 where phone = $2").bind(i64::from(out)).bind(phone.as_str()).execute(&mut *c).await?;
                }
                if let Some(m) = &muted {
                    sqlx::query("update contact set muted_types = $1 where phone = $2").bind(m).bind(phone.as_str()).execute(&mut *c).await?;
                }
            });
            tx.commit().await?;
            out
        };
        self.contact(phone).await
    }

    /// Queues a notification of `message_type` (a template) rendered with `context`. Refused
    /// when the template is unknown or disabled, the context lacks a variable the template
    /// uses, or the contact opted out or muted this type. Returns the message id and text
    /// (with an `idempotency_key` queued before: that message, nothing queued again).
    pub async fn notify(
        &self,
        phone: &Phone,
        message_type: &str,
        context: &serde_json::Value,
        reference_id: Option<&str>,
        idempotency_key: Option<&str>,
        now: i64,
    ) -> CoreResult<(MessageId, String)> {
        let t = self.template(message_type).await.map_err(|e| match e {
            CoreError::NotFound { .. } => {
                InputError::new("unknown_message_type", format!("'{message_type}' is not a message type (a template name)")).into()
            }
            other => other,
        })?;
        if !t.enabled {
            return Err(CoreError::conflict("template_disabled", format!("The {message_type} template is disabled.")));
        }
        if !context.is_object() {
            return Err(InputError::new("invalid_context", "context is a JSON object of the template's variables").into());
        }
        if let Some(r) = reference_id {
            if r.chars().count() > 200 {
                return Err(InputError::new("invalid_reference_id", "reference_id has at most 200 characters").into());
            }
        }
        let contact = match self.contact(phone).await {
            Ok(c) => Some(c),
            Err(CoreError::NotFound { .. }) => None,
            Err(e) => return Err(e),
        };
        if contact.as_ref().is_some_and(|c| c.opted_out) {
            return Err(CoreError::conflict("opted_out", "This contact sent STOP; nothing is sent until they send START."));
        }
        if contact.as_ref().is_some_and(|c| c.muted_types.iter().any(|m| m == message_type)) {
            return Err(CoreError::conflict("muted", format!("This contact does not want {message_type} messages.")));
        }
        let body = crate::templates::check(&t.body, &context.to_string())?;
        // A number we write to is a contact (its preferences can then be set).
        self.upsert_contact(phone, "").await?;
        let vars = minijinja::Value::from_serialize(context);
        let id = self
            .queue_outbound(
                &Outgoing { phone, body: &body, template: Some(message_type), vars: Some(&vars), media_url: None, idempotency_key },
                now,
            )
            .await?;
        if let Some(r) = reference_id {
            on_db!(self, pool => { sqlx::query("update message set reference_id = $1 where message_id = $2").bind(r).bind(id).execute(pool).await?; });
        }
        Ok((id, body))
    }

    /// Outbound message counts by status and message type over the last `days` days.
    pub async fn statistics(&self, days: i64, now: i64) -> CoreResult<Statistics> {
        if !(1..=3650).contains(&days) {
            return Err(InputError::new("invalid_days", "days is a number from 1 to 3650").into());
        }
        let rows: Vec<(Option<String>, String, i64)> = on_db!(self, pool => sqlx::query_as(
            "select template, status, count(*) from message where direction = 'out' and created_at >= $1 group by template, status")
            .bind(now - days * 86_400_000).fetch_all(pool).await?);
        let mut s = Statistics { days, ..Default::default() };
        for (template, status, n) in rows {
            s.total += n;
            *s.by_status.entry(status.clone()).or_default() += n;
            *s.by_message_type.entry(template.unwrap_or_else(|| "free_form".into())).or_default().entry(status).or_default() += n;
        }
        if s.total > 0 {
            let count = |names: &[&str]| names.iter().map(|n| s.by_status.get(*n).copied().unwrap_or(0)).sum::<i64>() as f64;
            let total = s.total as f64;
            s.delivery_rate = count(&["delivered", "read"]) / total;
            s.read_rate = count(&["read"]) / total;
            s.failure_rate = count(&["failed", "undelivered"]) / total;
        }
        Ok(s)
    }
}
