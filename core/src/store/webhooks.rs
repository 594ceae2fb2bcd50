//! Webhook endpoints, their messages, deliveries and attempts (see `crate::webhooks`).

use serde::Serialize;
use serde_json::Value;

use super::*;
use crate::integrations::{decrypt, encrypt};
use crate::webhooks::{self as wh, Verdict};

/// An endpoint as shown (never its secret).
#[derive(Debug, Clone, Serialize)]
pub struct EndpointRow {
    pub id: i64,
    pub url: String,
    pub event_types: Vec<String>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub failing_since: Option<i64>,
    /// While a rotated-out secret still signs: until when.
    pub previous_secret_until: Option<i64>,
    pub created_at: i64,
}

type EndpointDbRow = (i64, String, String, i64, Option<String>, Option<i64>, Option<i64>, i64);
const ENDPOINT_SELECT: &str =
    "select endpoint_id, url, event_types, enabled, disabled_reason, failing_since, previous_until, created_at from webhook_endpoint";

fn endpoint_row((id, url, types, enabled, disabled_reason, failing_since, previous_until, created_at): EndpointDbRow) -> EndpointRow {
    let now = now_ms();
    EndpointRow {
        id,
        url,
        event_types: serde_json::from_str(&types).unwrap_or_default(),
        enabled: enabled != 0,
        disabled_reason,
        failing_since,
        previous_secret_until: previous_until.filter(|t| *t > now),
        created_at,
    }
}

/// A delivery a sender has claimed: what to send where, signed with which secrets.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    pub delivery_id: i64,
    pub message_id: String,
    pub endpoint_id: i64,
    pub url: String,
    pub body: String,
    /// Including this one.
    pub attempts: i64,
    /// The secrets in effect (the current one, and the previous one during a rotation).
    pub secrets: Vec<String>,
}

/// One attempt as made.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub started_at: i64,
    pub status_code: Option<u16>,
    pub duration_ms: i64,
    pub error: Option<String>,
    pub excerpt: Option<String>,
}

/// A delivery with its attempts, for the log.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryRow {
    pub id: i64,
    pub message_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: Option<i64>,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub attempt_log: Vec<AttemptRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AttemptRow {
    pub n: i64,
    pub started_at: i64,
    pub status_code: Option<i64>,
    pub duration_ms: i64,
    pub error: Option<String>,
    pub response_excerpt: Option<String>,
}

fn iso(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

impl Tx<'_> {
    /// Queues `{type, timestamp, data}` for the given endpoints (all enabled endpoints that
    /// subscribe to `kind` when `only` is `None`), under `message_id` (a message queued
    /// before under that id: nothing new). Returns the message id when anything was queued.
    pub(crate) async fn queue_webhook(
        &mut self,
        message_id: &str,
        event_id: Option<i64>,
        kind: &str,
        data: &Value,
        only: Option<i64>,
    ) -> CoreResult<Option<String>> {
        let endpoints: Vec<(i64, String)> = on_tx!(self, c => sqlx::query_as("select endpoint_id, event_types from webhook_endpoint where enabled = 1")
            .fetch_all(&mut *c).await?);
        let targets: Vec<i64> = endpoints
            .into_iter()
            .filter(|(id, types)| match only {
                Some(o) => *id == o,
                None => serde_json::from_str::<Vec<String>>(types).is_ok_and(|t| t.iter().any(|x| x == kind)),
            })
            .map(|(id, _)| id)
            .collect();
        self.queue_webhook_to(message_id, event_id, kind, data, &targets).await
    }

    /// A WhatsApp message to every admin with a linked number, once per `key` and admin.
    pub(crate) async fn tell_admins(&mut self, text: &str, key: &str, now: i64) -> CoreResult<()> {
        let phones: Vec<String> = on_tx!(self, c => sqlx::query_scalar("select phone from app_user where role = 'admin' and phone is not null").fetch_all(&mut *c).await?);
        for p in phones {
            on_tx!(self, c => { sqlx::query(
                "insert into message (direction, phone, body, status, attempts, next_attempt_at, idempotency_key, created_at, updated_at)
                 values ('out', $1, $2, 'queued', 0, $3, $4, $3, $3) on conflict (idempotency_key) do nothing")
                .bind(&p).bind(text).bind(now).bind(format!("{key}:{p}")).execute(&mut *c).await?; });
        }
        Ok(())
    }

    /// The enabled endpoints and the event types each takes (read once by a bulk change).
    pub(crate) async fn webhook_subscriptions(&mut self) -> CoreResult<Vec<(i64, Vec<String>)>> {
        let rows: Vec<(i64, String)> = on_tx!(self, c => sqlx::query_as("select endpoint_id, event_types from webhook_endpoint where enabled = 1")
            .fetch_all(&mut *c).await?);
        Ok(rows.into_iter().map(|(id, t)| (id, serde_json::from_str(&t).unwrap_or_default())).collect())
    }

    /// [`Tx::queue_webhook`] to these endpoints.
    pub(crate) async fn queue_webhook_to(
        &mut self,
        message_id: &str,
        event_id: Option<i64>,
        kind: &str,
        data: &Value,
        targets: &[i64],
    ) -> CoreResult<Option<String>> {
        if targets.is_empty() {
            return Ok(None);
        }
        let now = now_ms();
        let body = serde_json::json!({"type": kind, "timestamp": iso(now), "data": data}).to_string();
        on_tx!(self, c => {
            sqlx::query("insert into webhook_message (message_id, event_id, type, body, created_at) values ($1, $2, $3, $4, $5) on conflict (message_id) do nothing")
                .bind(message_id).bind(event_id).bind(kind).bind(&body).bind(now).execute(&mut *c).await?;
            for e in targets {
                sqlx::query("insert into webhook_delivery (message_id, endpoint_id, status, next_attempt_at, created_at, updated_at)
                             values ($1, $2, 'pending', $3, $3, $3) on conflict (message_id, endpoint_id) do nothing")
                    .bind(message_id).bind(e).bind(now).execute(&mut *c).await?;
            }
        });
        Ok(Some(message_id.to_string()))
    }
}

impl Store {
    /// Adds an endpoint; returns it and its secret (shown this once; stored encrypted).
    pub async fn create_webhook_endpoint(
        &self,
        url: &str,
        event_types: &[String],
        allow_private: bool,
    ) -> CoreResult<(EndpointRow, String)> {
        let url = wh::check_url(url, allow_private)?;
        wh::check_event_types(event_types)?;
        let secret = wh::new_secret();
        let sealed = encrypt(&self.secret_key(), "webhook secret", &secret);
        let types = serde_json::to_string(event_types).map_err(|e| CoreError::Internal(e.to_string()))?;
        let id: i64 = on_db!(self, pool => sqlx::query_scalar(
            "insert into webhook_endpoint (url, event_types, secret, created_at) values ($1, $2, $3, $4) returning endpoint_id")
            .bind(url.as_str()).bind(&types).bind(&sealed).bind(now_ms()).fetch_one(pool).await?);
        Ok((self.webhook_endpoint(id).await?, secret))
    }

    pub async fn webhook_endpoints(&self) -> CoreResult<Vec<EndpointRow>> {
        let rows: Vec<EndpointDbRow> =
            on_db!(self, pool => sqlx::query_as(&format!("{ENDPOINT_SELECT} order by endpoint_id")).fetch_all(pool).await?);
        Ok(rows.into_iter().map(endpoint_row).collect())
    }

    pub async fn webhook_endpoint(&self, id: i64) -> CoreResult<EndpointRow> {
        let row: Option<EndpointDbRow> =
            on_db!(self, pool => sqlx::query_as(&format!("{ENDPOINT_SELECT} where endpoint_id = $1")).bind(id).fetch_optional(pool).await?);
        row.map(endpoint_row).ok_or_else(|| CoreError::not_found("endpoint_not_found", format!("webhook endpoint {id}")))
    }

    pub async fn delete_webhook_endpoint(&self, id: i64) -> CoreResult<()> {
        self.webhook_endpoint(id).await?;
        on_db!(self, pool => {
            sqlx::query("delete from webhook_attempt where delivery_id in (select delivery_id from webhook_delivery where endpoint_id = $1)").bind(id).execute(pool).await?;
            sqlx::query("delete from webhook_delivery where endpoint_id = $1").bind(id).execute(pool).await?;
            sqlx::query("delete from webhook_endpoint where endpoint_id = $1").bind(id).execute(pool).await?;
        });
        Ok(())
    }

    /// A new secret for an endpoint (returned once); the old one keeps signing for 24 hours
    /// (both signatures are sent), so the receiver can switch without missing a message. A
    /// disabled endpoint is enabled again.
    pub async fn rotate_webhook_secret(&self, id: i64) -> CoreResult<String> {
        let old: Option<String> = on_db!(self, pool => sqlx::query_scalar("select secret from webhook_endpoint where endpoint_id = $1").bind(id).fetch_optional(pool).await?);
        let old = old.ok_or_else(|| CoreError::not_found("endpoint_not_found", format!("webhook endpoint {id}")))?;
        let secret = wh::new_secret();
        let sealed = encrypt(&self.secret_key(), "webhook secret", &secret);
        on_db!(self, pool => { sqlx::query(
            "update webhook_endpoint set secret = $1, previous_secret = $2, previous_until = $3, enabled = 1, disabled_reason = null, failing_since = null
             where endpoint_id = $4")
            .bind(&sealed).bind(&old).bind(now_ms() + wh::ROTATION_OVERLAP_MS).bind(id).execute(pool).await?; });
        Ok(secret)
    }

    /// Claims due deliveries of enabled endpoints for `lease_ms`.
    pub async fn claim_webhook_deliveries(&self, now: i64, lease_ms: i64, limit: i64) -> CoreResult<Vec<ClaimedDelivery>> {
        let lock = if matches!(self.db, Db::Postgres(_)) { " for update skip locked" } else { "" };
        let claim = format!(
            "update webhook_delivery set lease_until = $1, attempts = attempts + 1, updated_at = $2
             where delivery_id in (select d.delivery_id from webhook_delivery d join webhook_endpoint e on e.endpoint_id = d.endpoint_id
                where d.status = 'pending' and d.next_attempt_at <= $2 and (d.lease_until is null or d.lease_until < $2) and e.enabled = 1
                order by d.next_attempt_at limit $3{lock})
             returning delivery_id"
        );
        let mut tx = self.begin().await?;
        let ids: Vec<i64> =
            on_tx!(&mut tx, c => sqlx::query_scalar(&claim).bind(now + lease_ms).bind(now).bind(limit).fetch_all(&mut *c).await?);
        tx.commit().await?;
        let mut out = vec![];
        for id in ids {
            type Row = (String, i64, String, String, i64, String, Option<String>, Option<i64>);
            let (message_id, endpoint_id, url, body, attempts, secret, previous, until): Row = on_db!(self, pool => sqlx::query_as(
                "select d.message_id, d.endpoint_id, e.url, m.body, d.attempts, e.secret, e.previous_secret, e.previous_until
                 from webhook_delivery d join webhook_endpoint e on e.endpoint_id = d.endpoint_id join webhook_message m on m.message_id = d.message_id
                 where d.delivery_id = $1").bind(id).fetch_one(pool).await?);
            let key = self.secret_key();
            let mut secrets = vec![decrypt(&key, "webhook secret", &secret)?];
            if let (Some(p), Some(u)) = (previous, until) {
                if u > now {
                    secrets.push(decrypt(&key, "webhook secret", &p)?);
                }
            }
            out.push(ClaimedDelivery { delivery_id: id, message_id, endpoint_id, url, body, attempts, secrets });
        }
        Ok(out)
    }

    /// Logs an attempt and applies its verdict to the delivery and its endpoint. Returns
    /// the endpoint's URL when this attempt disabled it (the admins are to be told).
    pub async fn record_webhook_attempt(
        &self,
        d: &ClaimedDelivery,
        a: &Attempt,
        verdict: &Verdict,
        now: i64,
    ) -> CoreResult<Option<String>> {
        let (status, next, error): (&str, i64, Option<String>) = match verdict {
            Verdict::Succeeded => ("succeeded", now, None),
            Verdict::Retry(at) => ("pending", *at, a.error.clone().or_else(|| a.status_code.map(|s| format!("HTTP {s}")))),
            Verdict::GiveUp(why) => (if why.contains("abort") { "aborted" } else { "failed" }, now, Some(why.to_string())),
            Verdict::DisableEndpoint => ("failed", now, Some("410 Gone: the endpoint was disabled".into())),
        };
        let mut tx = self.begin().await?;
        let disabled = on_tx!(&mut tx, c => {
            sqlx::query("insert into webhook_attempt (delivery_id, n, started_at, status_code, duration_ms, error, response_excerpt) values ($1, $2, $3, $4, $5, $6, $7)
                         on conflict (delivery_id, n) do nothing")
                .bind(d.delivery_id).bind(d.attempts).bind(a.started_at).bind(a.status_code.map(i64::from)).bind(a.duration_ms).bind(&a.error).bind(&a.excerpt)
                .execute(&mut *c).await?;
            sqlx::query("update webhook_delivery set status = $1, next_attempt_at = $2, lease_until = null, last_status = $3, last_error = $4, updated_at = $5 where delivery_id = $6")
                .bind(status).bind(next).bind(a.status_code.map(i64::from)).bind(&error).bind(now).bind(d.delivery_id).execute(&mut *c).await?;
            match verdict {
                Verdict::Succeeded => {
                    sqlx::query("update webhook_endpoint set failing_since = null where endpoint_id = $1").bind(d.endpoint_id).execute(&mut *c).await?;
                    false
                }
                Verdict::DisableEndpoint => {
                    sqlx::query("update webhook_endpoint set enabled = 0, disabled_reason = '410 Gone' where endpoint_id = $1").bind(d.endpoint_id).execute(&mut *c).await?;
                    true
                }
                _ => {
                    sqlx::query("update webhook_endpoint set failing_since = coalesce(failing_since, $1) where endpoint_id = $2").bind(now).bind(d.endpoint_id).execute(&mut *c).await?;
                    let done = sqlx::query("update webhook_endpoint set enabled = 0, disabled_reason = 'failing for 5 days' where endpoint_id = $1 and enabled = 1 and failing_since < $2")
                        .bind(d.endpoint_id).bind(now - wh::DISABLE_AFTER_MS).execute(&mut *c).await?;
                    done.rows_affected() == 1
                }
            }
        });
        if disabled {
            let why = if matches!(verdict, Verdict::DisableEndpoint) { "it answered 410 Gone" } else { "it has failed for 5 days" };
            let text = format!(
                "Dropcheck disabled the webhook endpoint {} because {why}. Rotate its secret under the API to turn it on again.",
                d.url
            );
            tx.tell_admins(&text, &format!("webhook-disabled:{}:{}", d.endpoint_id, d.delivery_id), now).await?;
        }
        tx.commit().await?;
        Ok(disabled.then(|| d.url.clone()))
    }

    /// An endpoint's deliveries, newest first, each with its attempts.
    pub async fn webhook_deliveries(&self, endpoint_id: i64, limit: i64) -> CoreResult<Vec<DeliveryRow>> {
        type Row = (i64, String, String, String, i64, i64, Option<i64>, Option<String>, i64);
        let rows: Vec<Row> = on_db!(self, pool => sqlx::query_as(
            "select d.delivery_id, d.message_id, m.type, d.status, d.attempts, d.next_attempt_at, d.last_status, d.last_error, d.created_at
             from webhook_delivery d join webhook_message m on m.message_id = d.message_id where d.endpoint_id = $1 order by d.delivery_id desc limit $2")
            .bind(endpoint_id).bind(limit).fetch_all(pool).await?);
        let mut out = vec![];
        for (id, message_id, kind, status, attempts, next, last_status, last_error, created_at) in rows {
            let log: Vec<(i64, i64, Option<i64>, i64, Option<String>, Option<String>)> = on_db!(self, pool => sqlx::query_as(
                "select n, started_at, status_code, duration_ms, error, response_excerpt from webhook_attempt where delivery_id = $1 order by n")
                .bind(id).fetch_all(pool).await?);
            out.push(DeliveryRow {
                id,
                message_id,
                kind,
                next_attempt_at: (status == "pending").then_some(next),
                status,
                attempts,
                last_status,
                last_error,
                created_at,
                attempt_log: log
                    .into_iter()
                    .map(|(n, started_at, status_code, duration_ms, error, response_excerpt)| AttemptRow {
                        n,
                        started_at,
                        status_code,
                        duration_ms,
                        error,
                        response_excerpt,
                    })
                    .collect(),
            });
        }
        Ok(out)
    }

    /// Sends a delivery again now, with the same `webhook-id` (a new timestamp and signature).
    pub async fn replay_webhook_delivery(&self, delivery_id: i64) -> CoreResult<()> {
        let done = on_db!(self, pool => sqlx::query(
            "update webhook_delivery set status = 'pending', next_attempt_at = $1, lease_until = null, updated_at = $1 where delivery_id = $2")
            .bind(now_ms()).bind(delivery_id).execute(pool).await?.rows_affected());
        if done == 0 {
            return Err(CoreError::not_found("delivery_not_found", format!("webhook delivery {delivery_id}")));
        }
        Ok(())
    }

    /// Replays every failed or aborted delivery of an endpoint created since `since`; how many.
    pub async fn replay_failed_webhooks(&self, endpoint_id: i64, since: i64) -> CoreResult<u64> {
        self.webhook_endpoint(endpoint_id).await?;
        Ok(on_db!(self, pool => sqlx::query(
            "update webhook_delivery set status = 'pending', next_attempt_at = $1, lease_until = null, updated_at = $1
             where endpoint_id = $2 and status in ('failed', 'aborted') and created_at >= $3")
            .bind(now_ms()).bind(endpoint_id).bind(since).execute(pool).await?.rows_affected()))
    }

    /// When the next pending delivery is due (tests drain until none is).
    pub async fn next_webhook_due(&self) -> CoreResult<Option<i64>> {
        Ok(on_db!(self, pool => sqlx::query_scalar::<_, Option<i64>>(
            "select min(d.next_attempt_at) from webhook_delivery d join webhook_endpoint e on e.endpoint_id = d.endpoint_id where d.status = 'pending' and e.enabled = 1")
            .fetch_one(pool).await?))
    }
}
