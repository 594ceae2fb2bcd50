//! The WhatsApp inbox: the webhook ledger and the inbound event queue.
//!
//! A webhook is answered only after [`Store::record_webhook`] committed its receipt and one
//! `inbound_event` row per message or status. `(provider, dedupe_key)` is unique, so a
//! redelivery has no second effect. Workers [`Store::claim_events`] in batches with a lease
//! (events of one number strictly in arrival order), download the media, then
//! [`Store::process_events`] applies the batch in one transaction together with each event's
//! outcome (only when an event fails is the batch applied again with each event in a
//! savepoint): statuses move outbound messages forward, messages drive the conversation
//! ([`crate::conversation`]). Attachments, live-update fingerprints and templates live in
//! their own modules.
//!
//! This module holds the ledger (receipts and events as they came in, and their reads for
//! the admins' page); `processing` claims and applies the events.

mod processing;

use crate::ids::{EventId, ReceiptId};
use serde::Serialize;
use sqlx::FromRow;
use std::collections::{HashMap, HashSet};

use crate::conversation::Conversations;
use crate::error::{CoreError, CoreResult, InputError};
use crate::media::StoredMedia;
use crate::outbox::RetryPolicy;
use crate::providers::{DeliveryStatus, InboundMessage, Provider, StatusUpdate, WebhookEvent};
use crate::store::{on_db, on_tx, Db, Store, Tx};

/// How often an event is tried before it fails (a media download that keeps failing, a
/// transient database error); a deterministic failure fails at once.
pub const EVENT_MAX_ATTEMPTS: i64 = 8;

/// A claimed event made ready for its transaction.
#[derive(Debug)]
pub struct ReadyEvent {
    pub event: ClaimedEvent,
    pub work: Work,
}

#[derive(Debug)]
pub enum Work {
    /// Apply it: a status, or a message with its media as downloaded and stored (in the
    /// message's media order; see [`crate::conversation::DOWNLOAD_FAILED`]).
    Apply(Vec<Result<StoredMedia, String>>),
    /// Decided before the transaction (a media download to try again later).
    Decided(EventOutcome),
}

/// What an event that failed its attempt does next: tried again with backoff (events of its
/// number wait meanwhile), or failed for good after [`EVENT_MAX_ATTEMPTS`] (it stays in the
/// ledger to inspect and reprocess).
pub fn retry_or_fail(attempts: i64, error: String, policy: &RetryPolicy, now: i64) -> EventOutcome {
    if attempts >= EVENT_MAX_ATTEMPTS {
        EventOutcome::Failed(format!("{error} (gave up after {attempts} attempts)"))
    } else {
        // Events count their attempts; only the backoff is shared with the outbox.
        let p = RetryPolicy { base_ms: policy.base_ms.clamp(200, 10_000), ..*policy };
        EventOutcome::Retry { error, at: now + p.delay_ms(attempts, None).max(100) }
    }
}

/// A verified webhook request to record.
#[derive(Debug, Clone)]
pub struct WebhookIn {
    pub provider: Provider,
    pub path: String,
    pub content_type: String,
    pub body: String,
    pub parsed: Result<Vec<WebhookEvent>, InputError>,
    pub received_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiptOutcome {
    pub receipt_id: ReceiptId,
    pub new_events: usize,
    pub duplicates: usize,
}

#[derive(Debug, Clone)]
pub struct ClaimedEvent {
    pub event_id: EventId,
    pub provider: String,
    /// The number whose events are handled in order ("" for statuses).
    pub phone: String,
    pub event: WebhookEvent,
    /// Including this attempt.
    pub attempts: i64,
}

/// How processing an event ended.
#[derive(Debug, Clone)]
pub enum EventOutcome {
    Done(String),
    /// Try again at `at` (unix ms): a transient failure such as a media download.
    Retry {
        error: String,
        at: i64,
    },
    Failed(String),
}

#[derive(Debug, Clone, Serialize, FromRow)]
pub struct ReceiptRow {
    pub receipt_id: ReceiptId,
    pub provider: String,
    pub path: String,
    pub received_at: i64,
    pub verdict: String,
    pub error: Option<String>,
    pub event_count: i64,
    pub duplicate_count: i64,
}

#[derive(Debug, Clone, Serialize, FromRow)]
pub struct EventRow {
    pub event_id: EventId,
    pub receipt_id: Option<ReceiptId>,
    pub provider: String,
    pub kind: String,
    pub phone: String,
    pub state: String,
    pub attempts: i64,
    pub error: Option<String>,
    pub result: Option<String>,
    pub received_at: i64,
    pub processed_at: Option<i64>,
}

/// How long an inbox transaction on SQLite may keep the write lock while another writer waits
/// for it (see [`Store::process_events`]): a webhook's acknowledgment waits at most about this
/// long behind the inbox, and the inbox still commits many events at a time.
pub const WRITE_SLICE: std::time::Duration = std::time::Duration::from_millis(5);

/// Webhook receipts written by one statement (8 parameters each; both databases take many
/// more than 8 × 256).
const RECEIPTS_PER_STATEMENT: usize = 256;
/// Inbound events written by one statement (8 parameters each).
const EVENTS_PER_STATEMENT: usize = 256;

impl Store {
    // ------------------------------------------------------------ ledger and queue

    /// Records a webhook request whose signature verified: the raw body, and (when it parsed)
    /// one pending event per message or status, in one transaction. A malformed body is kept
    /// as a rejected receipt for inspection.
    pub async fn record_webhook(
        &self,
        provider: Provider,
        path: &str,
        content_type: &str,
        body: &str,
        parsed: &Result<Vec<WebhookEvent>, InputError>,
        now: i64,
    ) -> CoreResult<ReceiptOutcome> {
        let one = WebhookIn {
            provider,
            path: path.to_string(),
            content_type: content_type.to_string(),
            body: body.to_string(),
            parsed: parsed.clone(),
            received_at: now,
        };
        let mut out = self.record_webhooks(std::slice::from_ref(&one)).await?;
        out.pop().ok_or_else(|| CoreError::Internal("no receipt recorded".into()))
    }

    /// Records several webhook requests in one transaction (group commit: one fsync for all
    /// the requests that arrived while the previous commit ran). All or none are stored.
    pub async fn record_webhooks(&self, batch: &[WebhookIn]) -> CoreResult<Vec<ReceiptOutcome>> {
        let mut payloads: Vec<Vec<String>> = Vec::with_capacity(batch.len());
        for w in batch {
            let events: &[WebhookEvent] = w.parsed.as_deref().unwrap_or(&[]);
            let mut p = Vec::with_capacity(events.len());
            for e in events {
                p.push(serde_json::to_string(e).map_err(|err| CoreError::Internal(format!("event payload: {err}")))?);
            }
            payloads.push(p);
        }
        let mut tx = self.begin().await?;
        let mut outcomes = Vec::with_capacity(batch.len());
        for (chunk, chunk_payloads) in batch.chunks(RECEIPTS_PER_STATEMENT).zip(payloads.chunks(RECEIPTS_PER_STATEMENT)) {
            outcomes.extend(tx.insert_receipts(chunk, chunk_payloads).await?);
        }
        tx.commit().await?;
        Ok(outcomes)
    }
}

impl Tx<'_> {
    /// Inserts webhook receipts and their events with one statement for the receipts and
    /// one per [`EVENTS_PER_STATEMENT`] events (not two statements per webhook: the ingest
    /// writer's group commit is then mostly the commit itself).
    async fn insert_receipts(&mut self, batch: &[WebhookIn], payloads: &[Vec<String>]) -> CoreResult<Vec<ReceiptOutcome>> {
        let events_of = |w: &'_ WebhookIn| -> usize { w.parsed.as_deref().map_or(0, <[WebhookEvent]>::len) };
        // Counted as all new; corrected below in the rare case that some were not.
        let sql = format!(
            "insert into webhook_receipt (provider, path, received_at, content_type, body, verdict, error, event_count)
             values {} returning receipt_id",
            placeholder_rows(batch.len(), 8)
        );
        let mut ids: Vec<ReceiptId> = on_tx!(self, c => {
            let mut q = sqlx::query_scalar(&sql);
            for w in batch {
                let (verdict, error) = match &w.parsed {
                    Ok(_) => ("accepted", None),
                    Err(e) => ("rejected", Some(e.message.as_str())),
                };
                q = q.bind(w.provider.as_str()).bind(&w.path).bind(w.received_at).bind(&w.content_type).bind(&w.body)
                    .bind(verdict).bind(error).bind(events_of(w) as i64);
            }
            q.fetch_all(&mut *c).await?
        });
        if ids.len() != batch.len() {
            return Err(CoreError::Internal(format!("{} receipts written for {} webhooks", ids.len(), batch.len())));
        }
        // Both databases number the rows of one insert in the order of its VALUES (SQLite's
        // rowid is the largest so far plus one; PostgreSQL's identity takes the sequence's
        // next value row by row), and RETURNING need not keep that order: sorted, the ids
        // line up with the webhooks again.
        ids.sort_unstable();
        let events: Vec<(ReceiptId, &WebhookIn, &WebhookEvent, &String)> = batch
            .iter()
            .zip(&ids)
            .zip(payloads)
            .flat_map(|((w, id), p)| w.parsed.as_deref().unwrap_or(&[]).iter().zip(p).map(move |(e, payload)| (*id, w, e, payload)))
            .collect();
        let mut new_by_receipt: HashMap<ReceiptId, usize> = HashMap::new();
        for chunk in events.chunks(EVENTS_PER_STATEMENT) {
            let sql = format!(
                "insert into inbound_event (receipt_id, provider, dedupe_key, kind, phone, payload, next_attempt_at, received_at)
                 values {} on conflict (provider, dedupe_key) do nothing returning receipt_id",
                placeholder_rows(chunk.len(), 8)
            );
            let inserted: Vec<ReceiptId> = on_tx!(self, c => {
                let mut q = sqlx::query_scalar(&sql);
                for (id, w, e, payload) in chunk {
                    let phone = if matches!(e, WebhookEvent::Message(_)) { e.phone().unwrap_or_default() } else { "" };
                    q = q.bind(*id).bind(w.provider.as_str()).bind(e.dedupe_key()).bind(e.kind()).bind(phone).bind(*payload)
                        .bind(w.received_at).bind(w.received_at);
                }
                q.fetch_all(&mut *c).await?
            });
            for id in inserted {
                *new_by_receipt.entry(id).or_default() += 1;
            }
        }
        let mut outcomes = Vec::with_capacity(batch.len());
        for (w, receipt_id) in batch.iter().zip(ids) {
            let new_events = new_by_receipt.get(&receipt_id).copied().unwrap_or(0);
            let duplicates = events_of(w) - new_events;
            if duplicates != 0 {
                on_tx!(self, c => { sqlx::query("update webhook_receipt set event_count = $1, duplicate_count = $2 where receipt_id = $3")
                    .bind(new_events as i64).bind(duplicates as i64).bind(receipt_id).execute(&mut *c).await?; });
            }
            outcomes.push(ReceiptOutcome { receipt_id, new_events, duplicates });
        }
        Ok(outcomes)
    }
}

impl Store {
    /// Puts an event back in the queue (the ledger's "reprocess").
    pub async fn requeue_event(&self, event_id: EventId, now: i64) -> CoreResult<()> {
        let n = on_db!(self, pool => sqlx::query(
            "update inbound_event set state = 'pending', attempts = 0, next_attempt_at = $1, lease_until = null where event_id = $2 and state <> 'processing'")
            .bind(now).bind(event_id).execute(pool).await?.rows_affected());
        if n == 0 {
            return Err(CoreError::not_found("event_not_found", format!("event {event_id} (or it is being processed)")));
        }
        Ok(())
    }

    pub async fn recent_receipts(&self, limit: i64) -> CoreResult<Vec<ReceiptRow>> {
        Ok(on_db!(self, pool => sqlx::query_as::<_, ReceiptRow>(
            "select receipt_id, provider, path, received_at, verdict, error, event_count, duplicate_count
             from webhook_receipt order by receipt_id desc limit $1")
            .bind(limit).fetch_all(pool).await?))
    }

    pub async fn recent_events(&self, limit: i64) -> CoreResult<Vec<EventRow>> {
        Ok(on_db!(self, pool => sqlx::query_as::<_, EventRow>(
            "select event_id, receipt_id, provider, kind, phone, state, attempts, error, result, received_at, processed_at
             from inbound_event order by event_id desc limit $1")
            .bind(limit).fetch_all(pool).await?))
    }

    /// When the oldest event still to process arrived (unix ms), or `None` when the inbox
    /// is empty: how far processing lags behind.
    pub async fn oldest_pending_event_at(&self) -> CoreResult<Option<i64>> {
        Ok(on_db!(self, pool => sqlx::query_scalar::<_, i64>(
            "select received_at from inbound_event where state in ('pending', 'processing') order by event_id limit 1")
            .fetch_optional(pool).await?))
    }

    /// When the next pending event is due (its retry time, or when a claim on it lapses),
    /// or `None` when nothing is pending or being processed.
    pub async fn next_event_due(&self) -> CoreResult<Option<i64>> {
        Ok(on_db!(self, pool => sqlx::query_scalar::<_, Option<i64>>(
            "select min(case when state = 'pending' then next_attempt_at else lease_until end) from inbound_event
             where state in ('pending', 'processing')").fetch_one(pool).await?))
    }

    /// How many events wait to be processed (pending or being processed): the inbox's
    /// backlog, counted on the index of open events (its cost follows the backlog, not the
    /// history).
    pub async fn events_open(&self) -> CoreResult<i64> {
        Ok(on_db!(self, pool => sqlx::query_scalar("select count(*) from inbound_event where state in ('pending', 'processing')")
            .fetch_one(pool).await?))
    }

    /// Events by state: (pending + processing, done, failed).
    pub async fn event_counts(&self) -> CoreResult<(i64, i64, i64)> {
        let rows: Vec<(String, i64)> =
            on_db!(self, pool => sqlx::query_as("select state, count(*) from inbound_event group by state").fetch_all(pool).await?);
        let n = |names: &[&str]| rows.iter().filter(|(s, _)| names.contains(&s.as_str())).map(|(_, n)| n).sum();
        Ok((n(&["pending", "processing"]), n(&["done"]), n(&["failed"])))
    }

    // ------------------------------------------------------------ statuses
}

/// `rows` rows of `width` numbered parameters for a VALUES list: `($1, $2), ($3, $4)`.
pub(crate) fn placeholder_rows(rows: usize, width: usize) -> String {
    let row = |r: usize| format!("({})", (1..=width).map(|k| format!("${}", r * width + k)).collect::<Vec<_>>().join(", "));
    (0..rows).map(row).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::placeholder_rows;

    #[test]
    fn values_lists_number_their_parameters_row_by_row() {
        assert_eq!(placeholder_rows(2, 2), "($1, $2), ($3, $4)");
        assert_eq!(placeholder_rows(1, 3), "($1, $2, $3)");
        assert_eq!(placeholder_rows(3, 1), "($1), ($2), ($3)");
    }
}
