//! The outbound queue: every outbound message is a `message` row written in
//! the same transaction as the change that caused it. Senders claim due rows with a lease,
//! send, and record the provider's id and status, or the failure and when to try again.
//! A claim whose lease expired (the sender died) is claimable again, so nothing is lost; a
//! message goes out twice only if the sender died between the provider accepting it and
//! the id being recorded.

use crate::ids::MessageId;
use sqlx::FromRow;

use crate::error::{CoreError, CoreResult};
use crate::providers::DeliveryStatus;
use crate::store::{bind_args, on_db, on_tx, Arg, Db, Keyed, MessageRow, Store};

mod messages;
mod policy;
pub use messages::{MessageFilter, OutboxCounts};
pub use policy::{
    is_ambiguous, is_opt_confirmation, outcome_after_failure, plan_send, Content, RetryPolicy, SendFailure, SendPlan, BURST_WAIT_MS,
    SESSION_WINDOW_MS,
};

/// A message a sender has claimed.
#[derive(Debug, Clone, FromRow)]
pub struct Outbound {
    pub message_id: MessageId,
    pub phone: crate::domain::Phone,
    pub body: String,
    pub template: Option<String>,
    /// The variables the body was rendered from (JSON), to fill a provider template's parameters.
    pub template_vars: Option<String>,
    /// The template's approved provider templates (JSON, [`crate::templates::ProviderTemplates`]).
    pub provider_template: Option<String>,
    pub media_url: Option<String>,
    /// Set on replies that wait for a burst to end (photo acknowledgments).
    pub batch_key: Option<String>,
    /// The last failure's code (an ambiguous one is reconciled before the next attempt).
    pub error_code: Option<String>,
    pub created_at: i64,
    /// When this series of attempts began (queued, or resent): retries end at this plus the
    /// retry horizon.
    pub retry_from: i64,
    /// Including this attempt.
    pub attempts: i64,
    pub opted_out: i64,
    /// The contact's muted message types (space-separated template names).
    pub muted_types: Option<String>,
    pub last_inbound_at: Option<i64>,
    /// `notifications` (queued through the notifications API) or `conversation`.
    pub channel: String,
}

crate::store::row_key!(Outbound => "message"."message_id");

/// The statuses an outbound message can be queued again from ("Resend"; the store's
/// [`Store::resend`] and the dashboard's button both go by it).
pub const RESENDABLE: [&str; 2] = ["failed", "undelivered"];

impl MessageRow {
    /// Whether "Resend" applies: an outbound message that failed or was not delivered.
    pub fn resendable(&self) -> bool {
        self.direction == crate::domain::Direction::Out && RESENDABLE.contains(&self.status.as_str())
    }
}

/// The error code of a message whose sender died during the send (its lease ran out): as
/// ambiguous as a timeout, so the next attempt first looks for it at the provider.
pub const LEASE_EXPIRED: &str = "lease_expired";

const OUTBOUND_SELECT: &str = "select m.message_id, m.phone, m.body, m.template, m.template_vars, t.provider_template, m.media_url,
        m.batch_key, m.error_code, m.created_at, coalesce(m.retry_from, m.created_at) as retry_from, m.attempts, coalesce(c.opted_out, 0) as opted_out, c.muted_types, c.last_inbound_at, m.channel
    from message m left join contact c on c.phone = m.phone left join message_template t on t.name = m.template";

/// What became of a claimed outbound message.
#[derive(Debug, Clone, PartialEq)]
pub enum SendOutcome {
    /// The provider accepted it; `sent_as` says how it went (`text`, `media`, `template:NAME`).
    Sent { message_id: MessageId, provider_id: String, status: DeliveryStatus, sent_as: String, at: i64 },
    /// The attempt failed: `retry_at` schedules another, `None` fails the message for good.
    Failed { message_id: MessageId, code: String, text: String, retry_at: Option<i64>, at: i64 },
    /// Not attempted yet: back in the queue until then.
    Deferred { message_id: MessageId, until: i64 },
    /// The provider asked us to wait (a 429 or a throughput error with `Retry-After`): back
    /// in the queue until then, the attempt not counted, the error kept for `/messages`.
    Throttled { message_id: MessageId, code: String, text: String, until: i64, at: i64 },
}

/// An outbound message to queue.
pub struct Outgoing<'a> {
    pub phone: &'a crate::domain::Phone,
    pub body: &'a str,
    pub template: Option<&'a str>,
    pub vars: Option<&'a minijinja::Value>,
    pub media_url: Option<&'a str>,
    /// What caused it, unique in the outbox: queueing the same key again queues nothing and
    /// returns the message queued first. `None`: a cause of its own (a random key).
    pub idempotency_key: Option<&'a str>,
    /// Queued through the notifications API: MyOperator sends it when it is configured.
    pub notification: bool,
    /// The notifications API caller's reference.
    pub reference_id: Option<&'a str>,
}

/// A media URL the provider will fetch: absolute http(s), no credentials, at most 2000 characters.
fn check_media_url(raw: &str) -> Result<String, crate::InputError> {
    let url = raw.trim();
    let bad = || crate::InputError::new("invalid_media_url", "media_url is an http(s) address the provider can fetch");
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://")).ok_or_else(bad)?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if url.len() > 2000 || host.is_empty() || host.contains('@') || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad());
    }
    Ok(url.to_string())
}

impl Store {
    /// Claims up to `limit` due outbound messages (oldest due first) with a lease, in one
    /// statement. On PostgreSQL the rows are picked with `FOR UPDATE SKIP LOCKED`, so
    /// replicas never wait on each other. Returned in queue order.
    pub async fn claim_outbound(&self, now: i64, lease_ms: i64, limit: i64) -> CoreResult<Vec<Outbound>> {
        // PostgreSQL: replicas skip each other's locked rows. SQLite has one writer at a time,
        // where the `status = 'queued'` guard alone makes the claim.
        let lock = match self.db {
            Db::Sqlite(_) => "",
            Db::Postgres(_) => " for update skip locked",
        };
        let claim = format!(
            "update message set status = 'sending', lease_until = $1, attempts = attempts + 1, updated_at = $2
             where message_id in (select message_id from message where direction = 'out' and status = 'queued' and next_attempt_at <= $2
                                  order by next_attempt_at, message_id limit $3{lock})
               and status = 'queued'
             returning message_id"
        );
        // One transaction (one write to disk, and on SQLite the writers' turn like any other).
        let mut tx = self.begin().await?;
        let ids: Vec<MessageId> = on_tx!(&mut tx, c => {
            // A sender died mid-send: the provider may have the message, so the next attempt
            // first looks for it (see `LEASE_EXPIRED`).
            sqlx::query(
                "update message set status = 'queued', error_code = $2, error_text = 'The sender stopped during the send; checking whether it went out.'
                 where direction = 'out' and status = 'sending' and lease_until < $1")
                .bind(now).bind(LEASE_EXPIRED).execute(&mut *c).await?;
            sqlx::query_scalar(&claim).bind(now + lease_ms).bind(now).bind(limit.clamp(1, 500)).fetch_all(&mut *c).await?
        });
        tx.commit().await?;
        if ids.is_empty() {
            return Ok(vec![]);
        }
        let args: Vec<Arg> = ids.iter().map(|id| Arg::I(id.get())).collect();
        let list: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
        let sql = format!("{OUTBOUND_SELECT} where m.message_id in ({}) order by m.next_attempt_at, m.message_id", list.join(", "));
        Ok(Keyed::all(on_db!(self, pool => bind_args!(sqlx::query_as::<_, Keyed<Outbound>>(&sql), &args).fetch_all(pool).await?)))
    }

    /// Records that a number wrote to us (opens WhatsApp's 24-hour window); the number becomes
    /// a contact if it was not one. (The conversation records this itself for every inbound
    /// message; tests use this to open the window.)
    pub async fn note_inbound(&self, phone: &crate::domain::Phone, at: i64) -> CoreResult<()> {
        let mut tx = self.begin().await?;
        tx.note_inbound(phone, "", at).await?;
        tx.commit().await
    }

    /// Inbound events of this number not yet processed.
    pub async fn inbox_backlog(&self, phone: &str) -> CoreResult<i64> {
        Ok(on_db!(self, pool => sqlx::query_scalar::<_, i64>(
            "select count(*) from inbound_event where phone = $1 and state in ('pending', 'processing')")
            .bind(phone).fetch_one(pool).await?))
    }

    /// Claims one queued message now, whatever its due time (an immediate send through the
    /// API). `None` when it is not queued (a sender took it first).
    pub async fn claim_outbound_now(&self, message_id: MessageId, now: i64, lease_ms: i64) -> CoreResult<Option<Outbound>> {
        let n = on_db!(self, pool => sqlx::query(
            "update message set status = 'sending', lease_until = $1, attempts = attempts + 1, updated_at = $2
             where message_id = $3 and direction = 'out' and status = 'queued'")
            .bind(now + lease_ms).bind(now).bind(message_id).execute(pool).await?.rows_affected());
        if n == 0 {
            return Ok(None);
        }
        Ok(on_db!(self, pool => sqlx::query_as::<_, Keyed<Outbound>>(&format!("{OUTBOUND_SELECT} where m.message_id = $1"))
            .bind(message_id).fetch_optional(pool).await?)
        .map(|k| k.0))
    }

    /// Records what became of claimed messages, all in one transaction (the sender
    /// group-commits the outcomes of the sends that finished together).
    pub async fn record_outcomes(&self, outcomes: &[SendOutcome]) -> CoreResult<()> {
        {
            let mut tx = self.begin().await?;
            // The accepted sends (nearly all of them) in one statement per 100.
            let sent: Vec<_> = outcomes
                .iter()
                .filter_map(|o| match o {
                    SendOutcome::Sent { message_id, provider_id, status, sent_as, at } => {
                        Some((*message_id, provider_id, *status, sent_as, *at))
                    }
                    _ => None,
                })
                .collect();
            for chunk in sent.chunks(100) {
                let v =
                    format!("with v (id, status, provider_id, sent_as, at) as (values {})", crate::inbox::placeholder_rows(chunk.len(), 5));
                let update = format!(
                    "{v} update message set status = v.status, provider_message_id = v.provider_id, sent_as = v.sent_as, updated_at = v.at,
                        lease_until = null, error_code = null, error_text = null
                     from v where message.message_id = v.id"
                );
                // The drops whose feedback went out: the drop page shows when.
                let feedback = format!(
                    "{v} update drop_job set feedback_sent_at = f.at
                     from (select m.drop_id, max(v.at) as at from v join message m on m.message_id = v.id
                           where m.template = 'drop_feedback' group by m.drop_id) f
                     where drop_job.drop_id = f.drop_id"
                );
                on_tx!(&mut tx, c => {
                    for sql in [&update, &feedback] {
                        let mut q = sqlx::query(sql);
                        for (message_id, provider_id, status, sent_as, at) in chunk {
                            q = q.bind(*message_id).bind(status.as_str()).bind(*provider_id).bind(*sent_as).bind(*at);
                        }
                        q.execute(&mut *c).await?;
                    }
                });
            }
            // Messages failed for good: each is a `message.failed` event (webhooks subscribe to it).
            let gave_up: Vec<(MessageId, String, String)> = outcomes
                .iter()
                .filter_map(|o| match o {
                    SendOutcome::Failed { message_id, code, text, retry_at: None, .. } => Some((*message_id, code.clone(), text.clone())),
                    _ => None,
                })
                .collect();
            let out = on_tx!(&mut tx, c => {
                for o in outcomes {
                    match o {
                        SendOutcome::Sent { .. } => {}
                        SendOutcome::Failed { message_id, code, text, retry_at: Some(retry_at), at } => {
                            sqlx::query(
                                "update message set status = 'queued', next_attempt_at = $1, lease_until = null, error_code = $2, error_text = $3,
                                    updated_at = $4 where message_id = $5")
                                .bind(retry_at).bind(code).bind(text).bind(at).bind(message_id).execute(&mut *c).await?;
                        }
                        SendOutcome::Failed { message_id, code, text, retry_at: None, at } => {
                            sqlx::query(
                                "update message set status = 'failed', lease_until = null, error_code = $1, error_text = $2, updated_at = $3
                                 where message_id = $4")
                                .bind(code).bind(text).bind(at).bind(message_id).execute(&mut *c).await?;
                        }
                        SendOutcome::Throttled { message_id, code, text, until, at } => {
                            sqlx::query(
                                "update message set status = 'queued', attempts = attempts - 1, next_attempt_at = $1, lease_until = null,
                                    error_code = $2, error_text = $3, updated_at = $4 where message_id = $5 and status = 'sending'")
                                .bind(until).bind(code).bind(text).bind(at).bind(message_id).execute(&mut *c).await?;
                        }
                        // Back unsent for later, the attempt not counted (a burst acknowledgment
                        // whose burst is still being processed).
                        SendOutcome::Deferred { message_id, until } => {
                            sqlx::query(
                                "update message set status = 'queued', attempts = attempts - 1, next_attempt_at = $1, lease_until = null
                                 where message_id = $2 and status = 'sending'")
                                .bind(until).bind(message_id).execute(&mut *c).await?;
                        }
                    }
                }
            });
            for (id, code, text) in gave_up {
                tx.message_failed(id, &code, &text).await?;
            }
            tx.commit().await?;
            out
        };
        Ok(())
    }

    /// Queues a failed (or undelivered) outbound message again, as a fresh attempt series.
    pub async fn resend(&self, message_id: MessageId, now: i64) -> CoreResult<()> {
        let sql = format!(
            "update message set status = 'queued', attempts = 0, next_attempt_at = $1, retry_from = $1, error_code = null, error_text = null,
                provider_message_id = null, updated_at = $1
             where message_id = $2 and direction = 'out' and status in ('{}')",
            RESENDABLE.join("', '")
        );
        let n = on_db!(self, pool => sqlx::query(&sql).bind(now).bind(message_id).execute(pool).await?.rows_affected());
        if n == 0 {
            return Err(CoreError::conflict("not_resendable", format!("message {message_id} is not a failed outbound message")));
        }
        Ok(())
    }

    /// Queues a free-form outbound message (`POST /send`, the API).
    pub async fn queue_message(&self, phone: &crate::domain::Phone, body: &str, template: Option<&str>, now: i64) -> CoreResult<MessageId> {
        let out =
            Outgoing { phone, body, template, vars: None, media_url: None, idempotency_key: None, notification: false, reference_id: None };
        self.queue_outbound(&out, now).await
    }

    /// Queues an outbound message: a text, optionally with a picture or document by URL
    /// (the body is its caption), optionally rendered from a template whose variables are
    /// kept for a send as the approved provider template.
    pub async fn queue_outbound(&self, m: &Outgoing<'_>, now: i64) -> CoreResult<MessageId> {
        let body = m.body.trim();
        if body.is_empty() || body.chars().count() > 1600 {
            return Err(crate::InputError::new("invalid_message", "a message needs 1–1600 characters").into());
        }
        let media_url = m.media_url.map(check_media_url).transpose()?;
        let vars = m.vars.map(vars_json).transpose()?;
        let key = match m.idempotency_key {
            Some(k) => k.to_string(),
            None => format!("once:{}", hex::encode(rand::random::<[u8; 16]>())),
        };
        let id: Option<MessageId> = on_db!(self, pool => sqlx::query_scalar(
            "insert into message (direction, phone, body, template, template_vars, media_url, status, attempts, next_attempt_at,
                idempotency_key, created_at, updated_at, channel, reference_id)
             values ('out', $1, $2, $3, $4, $5, 'queued', 0, $6, $7, $6, $6, $8, $9) on conflict (idempotency_key) do nothing returning message_id")
            .bind(m.phone.as_str()).bind(body).bind(m.template).bind(&vars).bind(&media_url).bind(now).bind(&key)
            .bind(if m.notification { "notifications" } else { "conversation" }).bind(m.reference_id)
            .fetch_optional(pool).await?);
        match id {
            Some(id) => Ok(id),
            None => on_db!(self, pool => sqlx::query_scalar("select message_id from message where idempotency_key = $1")
                .bind(&key).fetch_optional(pool).await?)
            .ok_or_else(|| CoreError::Internal(format!("message with key {key} neither queued nor found"))),
        }
    }

    /// When the next outbound message is due (its next attempt, or when a sender's claim on
    /// it lapses), or `None` when none is queued or being sent.
    pub async fn next_outbound_due(&self) -> CoreResult<Option<i64>> {
        Ok(on_db!(self, pool => sqlx::query_scalar::<_, Option<i64>>(
            "select min(case when status = 'queued' then next_attempt_at else lease_until end) from message
             where direction = 'out' and status in ('queued', 'sending')").fetch_one(pool).await?))
    }
}

/// A message's template variables as stored with it (JSON), for sends as a provider template.
pub(crate) fn vars_json(vars: &minijinja::Value) -> CoreResult<String> {
    serde_json::to_string(vars).map_err(|e| CoreError::Internal(format!("template variables: {e}")))
}
