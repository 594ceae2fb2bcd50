//! The notification service the predecessor offered, with its API: templated messages to
//! contacts by message type and their statistics. Every send honours the contact's
//! preferences (opt-out, muted message types; `store::contacts` keeps them).

use crate::ids::MessageId;
use serde::Serialize;
use std::collections::BTreeMap;

use crate::domain::Phone;
use crate::error::{CoreError, CoreResult, InputError};
use crate::outbox::Outgoing;
use crate::store::{on_db, Db, Store};

/// The stored muted list: template names separated by spaces.
pub fn parse_muted(raw: Option<&str>) -> Vec<String> {
    raw.unwrap_or("").split_whitespace().map(str::to_string).collect()
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

impl Store {
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
                &Outgoing {
                    phone,
                    body: &body,
                    template: Some(message_type),
                    vars: Some(&vars),
                    media_url: None,
                    idempotency_key,
                    notification: true,
                    reference_id,
                },
                now,
            )
            .await?;
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
