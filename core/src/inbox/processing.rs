//! Processing the inbound events: claimed in batches with a lease (each number's events in
//! order), applied in group transactions with each event's outcome, a failing event retried
//! alone in a savepoint, and the delivery statuses moved forward.

use super::*;
use crate::ids::EventId;

impl Store {
    /// Claims the oldest due event whose number has no earlier unfinished event, with a lease
    /// (an expired lease makes the event claimable again: a crashed worker loses nothing).
    pub async fn claim_event(&self, now: i64, lease_ms: i64) -> CoreResult<Option<ClaimedEvent>> {
        Ok(self.claim_events(now, lease_ms, 1).await?.pop())
    }

    /// Claims up to `limit` due events, oldest first, with a lease: none of a number whose
    /// earlier event is being processed or waits to be tried again. Several events of one
    /// number may come in one batch, in order. On PostgreSQL concurrent claimers skip each
    /// other's rows (`for update skip locked`); [`Store::process_events`] re-checks the order
    /// under a per-number lock.
    pub async fn claim_events(&self, now: i64, lease_ms: i64, limit: i64) -> CoreResult<Vec<ClaimedEvent>> {
        let pick = "select e.event_id from inbound_event e
             where e.state = 'pending' and e.next_attempt_at <= $1
               and not exists (select 1 from inbound_event x where e.phone <> '' and x.phone = e.phone and x.event_id < e.event_id
                               and x.state in ('pending', 'processing')
                               and (x.state = 'processing' or x.next_attempt_at > $1))
             order by e.event_id limit $3";
        let lock = if matches!(self.db, Db::Postgres(_)) { " for update skip locked" } else { "" };
        // One transaction (one write to disk), on SQLite in the writers' turn: outside it the
        // claim would wait for the lock in SQLite's sleeping busy handler behind the ingest.
        let mut tx = self.begin().await?;
        let rows: Vec<(EventId, String, String, String, i64)> = on_tx!(&mut tx, c => {
            sqlx::query("update inbound_event set state = 'pending' where state = 'processing' and lease_until < $1")
                .bind(now).execute(&mut *c).await?;
            sqlx::query_as(&format!(
                "update inbound_event set state = 'processing', lease_until = $2, attempts = attempts + 1
                 where event_id in ({pick}{lock}) returning event_id, provider, phone, payload, attempts"))
                .bind(now).bind(now + lease_ms).bind(limit).fetch_all(&mut *c).await?
        });
        tx.commit().await?;
        let mut claimed = Vec::with_capacity(rows.len());
        for (event_id, provider, phone, payload, attempts) in rows {
            match serde_json::from_str::<WebhookEvent>(&payload) {
                Ok(event) => claimed.push(ClaimedEvent { event_id, provider, phone, event, attempts }),
                Err(e) => {
                    let outcome = EventOutcome::Failed(format!("stored payload unreadable: {e}"));
                    tracing::error!(event = event_id.get(), "{outcome:?}");
                    self.finish_event(event_id, &outcome, now).await?;
                }
            }
        }
        claimed.sort_by_key(|e| e.event_id);
        Ok(claimed)
    }

    pub async fn finish_event(&self, event_id: EventId, outcome: &EventOutcome, now: i64) -> CoreResult<()> {
        let mut tx = self.begin().await?;
        tx.finish_event(event_id, outcome, now).await?;
        tx.commit().await
    }

    /// Gives claimed events back unprocessed (a batch that could not be committed), their
    /// attempt not counted.
    pub async fn release_events(&self, event_ids: &[EventId]) -> CoreResult<()> {
        let mut tx = self.begin().await?;
        for id in event_ids {
            tx.release_event(*id).await?;
        }
        tx.commit().await
    }

    /// Applies a batch of claimed events in as few transactions as it can, so many events
    /// commit with one write to disk. Each transaction first applies its events straight
    /// through; if one fails, that attempt is rolled back and applied again with each event in
    /// a savepoint with its outcome, so one event's failure undoes only its own effects. On
    /// SQLite a transaction that has run for [`WRITE_SLICE`] commits what it applied when
    /// another writer (a webhook waiting to be acknowledged) waits for the write lock, and the
    /// rest follows in the next one. Events of a number whose earlier event did not finish
    /// (it waits for a retry, or another worker holds it) are given back untouched, keeping
    /// each number's events in order. Returns each processed event's outcome.
    pub async fn process_events(&self, batch: Vec<ReadyEvent>, policy: &RetryPolicy, now: i64) -> CoreResult<Vec<(EventId, EventOutcome)>> {
        let mut batch = batch;
        for ev in &mut batch {
            if let Work::Apply(photos) = &mut ev.work {
                self.find_similar(photos).await?;
            }
        }
        // Numbers in one order in every batch: per-number locks are then always taken in
        // the same order, and two workers cannot deadlock on them.
        batch.sort_by(|a, b| (&a.event.phone, a.event.event_id).cmp(&(&b.event.phone, b.event.event_id)));
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut rest = &batch[..];
        let mut carried = Carried::default();
        while !rest.is_empty() {
            let (done, consumed) = match self.apply_batch(rest, policy, now, false, &mut carried).await? {
                Some(applied) => applied,
                None => self
                    .apply_batch(rest, policy, now, true, &mut carried)
                    .await?
                    .ok_or_else(|| CoreError::Internal("a batch applied event by event did not finish".into()))?,
            };
            outcomes.extend(done);
            rest = &rest[consumed..];
        }
        Ok(outcomes)
    }

    /// One transaction over the first events of `batch`: their outcomes and how many of the
    /// events it handled; `None` when an event failed and `careful` is off (nothing of the
    /// attempt is kept). `carried` is what the batch's earlier transactions learnt (kept only
    /// when this one commits).
    async fn apply_batch(
        &self,
        batch: &[ReadyEvent],
        policy: &RetryPolicy,
        now: i64,
        careful: bool,
        carried: &mut Carried,
    ) -> CoreResult<Option<(Vec<(EventId, EventOutcome)>, usize)>> {
        let secret = self.secret_key();
        let mut tx = self.begin().await?;
        let started = std::time::Instant::now();
        let settings = self.settings(&mut tx).await?;
        // Numbers with an earlier event not finished (waiting for a retry, or held by another
        // worker): their events here are given back.
        let mut firsts: Vec<(&str, EventId)> = Vec::new();
        for r in batch {
            let phone = r.event.phone.as_str();
            if !phone.is_empty() && firsts.last().is_none_or(|(p, _)| *p != phone) {
                firsts.push((phone, r.event.event_id));
            }
        }
        // On SQLite (one inbox loop) what the batch's first transaction found holds for its
        // later ones; on PostgreSQL each transaction takes the numbers' locks again.
        let mut waiting: HashSet<String> = match &carried.waiting {
            Some(w) if matches!(self.db, Db::Sqlite(_)) => w.clone(),
            _ => tx.numbers_waiting(&firsts).await?.into_iter().map(str::to_string).collect(),
        };
        // The conversations of the batch's senders: read at once by the batch's first
        // transaction, changed in memory, written before each commit.
        let mut conversations = carried.conversations.clone();
        conversations.vision = self.vision_checks();
        let mut unread: Vec<String> =
            batch.iter().filter_map(|r| conversation_of(&r.event.event)).filter(|p| !conversations.knows(p)).collect();
        unread.sort();
        unread.dedup();
        conversations.extend(tx.read_conversations(&unread.iter().map(String::as_str).collect::<Vec<_>>()).await?);
        let mut done: Vec<(EventId, String)> = Vec::with_capacity(batch.len());
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut consumed = 0;
        for r in batch {
            if consumed > 0 && started.elapsed() >= WRITE_SLICE && self.writer_waiting() {
                break;
            }
            consumed += 1;
            let ev = &r.event;
            let phone = ev.phone.as_str();
            if waiting.contains(phone) {
                tx.release_event(ev.event_id).await?;
                continue;
            }
            let outcome = match &r.work {
                Work::Decided(o) => o.clone(),
                Work::Apply(photos) => {
                    if careful {
                        let saved = conversation_of(&ev.event).map(|p| conversations.saved(&p));
                        let mut sp = tx.savepoint().await?;
                        match sp.apply_event(&settings, &secret, &mut conversations, &ev.event, photos, now).await {
                            Ok(result) => {
                                sp.commit().await?;
                                EventOutcome::Done(result)
                            }
                            Err(e) => {
                                sp.rollback().await?;
                                if let Some(saved) = saved {
                                    conversations.restore(saved);
                                }
                                after_error(ev, e, policy, now)
                            }
                        }
                    } else {
                        match tx.apply_event(&settings, &secret, &mut conversations, &ev.event, photos, now).await {
                            Ok(result) => EventOutcome::Done(result),
                            // A status for a message not known (yet): refused before it wrote
                            // anything, so the rest of the batch stands.
                            Err(e @ CoreError::NotFound { .. }) if matches!(ev.event, WebhookEvent::Status(_)) => {
                                after_error(ev, e, policy, now)
                            }
                            Err(e) => {
                                tracing::debug!(event = ev.event_id.get(), error = %e, "batch applied again event by event");
                                tx.rollback().await?;
                                return Ok(None);
                            }
                        }
                    }
                }
            };
            match &outcome {
                EventOutcome::Done(result) => done.push((ev.event_id, result.clone())),
                other => {
                    if matches!(other, EventOutcome::Retry { .. }) {
                        waiting.insert(phone.to_string());
                    }
                    tx.finish_event(ev.event_id, other, now).await?;
                }
            }
            outcomes.push((ev.event_id, outcome));
        }
        tx.write_conversations(&conversations).await?;
        tx.finish_done(&done, now).await?;
        tx.commit().await?;
        conversations.written();
        *carried = Carried { waiting: Some(waiting), conversations };
        Ok(Some((outcomes, consumed)))
    }

    /// Looks each photo up among the stored ones (before the transaction that files it).
    async fn find_similar(&self, photos: &mut [Result<StoredMedia, String>]) -> CoreResult<()> {
        for stored in photos.iter_mut().flatten() {
            if let Some(pdq) = &stored.pdq {
                stored.similar = self.similar_photos(pdq, stored.phash.as_ref()).await?;
            }
        }
        Ok(())
    }

    /// Applies one inbound message in a transaction of its own (the conversation tests; the
    /// workers use [`Store::process_events`]).
    pub async fn handle_message(&self, msg: &InboundMessage, photos: &[Result<StoredMedia, String>], now: i64) -> CoreResult<String> {
        let mut photos = photos.to_vec();
        self.find_similar(&mut photos).await?;
        let photos = &photos[..];
        let mut tx = self.begin().await?;
        let settings = self.settings(&mut tx).await?;
        let mut conversations = Conversations::default();
        conversations.vision = self.vision_checks();
        let result = tx.handle_message(&settings, &self.secret_key(), &mut conversations, msg, photos, now).await?;
        tx.write_conversations(&conversations).await?;
        tx.commit().await?;
        Ok(result)
    }

    /// Applies a delivery status to the outbound message with that provider id. Statuses only
    /// move forward; a late or repeated callback changes nothing.
    pub async fn apply_status(&self, s: &StatusUpdate, now: i64) -> CoreResult<String> {
        let mut tx = self.begin().await?;
        let r = tx.apply_status(s, now).await?;
        tx.commit().await?;
        Ok(r)
    }
}

/// What a failed attempt at an event does next.
fn after_error(ev: &ClaimedEvent, e: CoreError, policy: &RetryPolicy, now: i64) -> EventOutcome {
    match (&ev.event, e) {
        // The callback can beat the send's own bookkeeping: wait for it a little.
        (WebhookEvent::Status(s), CoreError::NotFound { .. }) if ev.attempts < 4 => {
            EventOutcome::Retry { error: format!("no message {} yet", s.provider_id), at: now + 250 * ev.attempts }
        }
        (WebhookEvent::Status(s), CoreError::NotFound { .. }) => {
            EventOutcome::Done(format!("no outbound message {} here; ignored", s.provider_id))
        }
        // It would fail the same way on every retry, holding up this number's later
        // messages: fail it now (it stays in the ledger to inspect and reprocess).
        (_, e) if e.is_deterministic() => EventOutcome::Failed(format!("cannot be processed ({}): {}", e.code(), deterministic_detail(&e))),
        (_, e) => retry_or_fail(ev.attempts, e.to_string(), policy, now),
    }
}

/// What one transaction of a batch hands to the next (see [`Store::process_events`]).
#[derive(Default)]
struct Carried {
    /// Numbers whose events in the rest of the batch are given back.
    waiting: Option<HashSet<String>>,
    /// The conversations of the batch's senders as committed so far.
    conversations: Conversations,
}

/// Whose conversation an event is applied in: a message's sender, as the conversation keys it.
fn conversation_of(event: &WebhookEvent) -> Option<String> {
    match event {
        WebhookEvent::Message(m) => crate::domain::Phone::parse(&m.from).ok().map(|p| p.as_str().to_string()),
        WebhookEvent::Status(_) => None,
    }
}

/// What the database said, for the ledger (an admin page), without the query's data.
fn deterministic_detail(e: &CoreError) -> String {
    match e {
        CoreError::Db(sqlx::Error::Database(d)) => d.message().to_string(),
        other => other.to_string(),
    }
}

impl Tx<'_> {
    /// Applies one event (a status or a message) in this transaction.
    async fn apply_event(
        &mut self,
        settings: &crate::conversation::Settings,
        secret: &[u8; 32],
        conversations: &mut Conversations,
        event: &WebhookEvent,
        photos: &[Result<StoredMedia, String>],
        now: i64,
    ) -> CoreResult<String> {
        match event {
            WebhookEvent::Status(s) => self.apply_status(s, now).await,
            WebhookEvent::Message(m) => self.handle_message(settings, secret, conversations, m, photos, now).await,
        }
    }

    /// Marks events done with their results, in one statement per 200.
    async fn finish_done(&mut self, done: &[(EventId, String)], now: i64) -> CoreResult<()> {
        for chunk in done.chunks(200) {
            let values: Vec<String> = (0..chunk.len()).map(|i| format!("(${}, ${})", 2 * i + 2, 2 * i + 3)).collect();
            let sql = format!(
                "with v (id, result) as (values {})
                 update inbound_event set state = 'done', error = null, lease_until = null, processed_at = $1,
                    result = (select v.result from v where v.id = inbound_event.event_id)
                 where event_id in (select id from v)",
                values.join(", ")
            );
            on_tx!(self, c => {
                let mut q = sqlx::query(&sql).bind(now);
                for (id, result) in chunk {
                    q = q.bind(*id).bind(result);
                }
                q.execute(&mut *c).await?;
            });
        }
        Ok(())
    }

    /// Records how an event's attempt ended.
    pub async fn finish_event(&mut self, event_id: EventId, outcome: &EventOutcome, now: i64) -> CoreResult<()> {
        on_tx!(self, c => {
            match outcome {
                EventOutcome::Done(result) => sqlx::query(
                    "update inbound_event set state = 'done', result = $1, error = null, lease_until = null, processed_at = $2 where event_id = $3")
                    .bind(result).bind(now).bind(event_id).execute(&mut *c).await?,
                EventOutcome::Retry { error, at } => sqlx::query(
                    "update inbound_event set state = 'pending', error = $1, lease_until = null, next_attempt_at = $2 where event_id = $3")
                    .bind(error).bind(*at).bind(event_id).execute(&mut *c).await?,
                EventOutcome::Failed(error) => sqlx::query(
                    "update inbound_event set state = 'failed', error = $1, lease_until = null, processed_at = $2 where event_id = $3")
                    .bind(error).bind(now).bind(event_id).execute(&mut *c).await?,
            };
        });
        Ok(())
    }

    /// Gives a claimed event back unprocessed, its attempt not counted.
    async fn release_event(&mut self, event_id: EventId) -> CoreResult<()> {
        on_tx!(self, c => { sqlx::query(
            "update inbound_event set state = 'pending', attempts = attempts - 1, lease_until = null where event_id = $1 and state = 'processing'")
            .bind(event_id).execute(&mut *c).await?; });
        Ok(())
    }

    /// Of these numbers (each with its first event in the batch, in the batch's order), those
    /// with an earlier event not finished (waiting, or held by another worker). On PostgreSQL
    /// it first takes each number's lock for the rest of the transaction, in the given order
    /// (the same in every batch, so two workers cannot deadlock), so two workers never apply
    /// one number's events at once. One statement for the whole batch.
    async fn numbers_waiting<'a>(&mut self, firsts: &[(&'a str, EventId)]) -> CoreResult<HashSet<&'a str>> {
        if firsts.is_empty() {
            return Ok(HashSet::new());
        }
        if let Tx::Postgres(t) = self {
            let phones: Vec<&str> = firsts.iter().map(|(p, _)| *p).collect();
            sqlx::query("select pg_advisory_xact_lock(hashtextextended(p, 0)) from unnest($1::text[]) as p")
                .bind(&phones)
                .execute(&mut **t)
                .await?;
        }
        let sql = format!(
            "with v (phone, first_id) as (values {})
             select v.phone from v where exists (select 1 from inbound_event x
                where x.phone = v.phone and x.event_id < v.first_id and x.state in ('pending', 'processing'))",
            placeholder_rows(firsts.len(), 2)
        );
        let rows: HashSet<String> = on_tx!(self, c => {
            let mut q = sqlx::query_scalar(&sql);
            for (phone, first) in firsts {
                q = q.bind(*phone).bind(*first);
            }
            q.fetch_all(&mut *c).await?.into_iter().collect()
        });
        Ok(firsts.iter().map(|(p, _)| *p).filter(|p| rows.contains(*p)).collect())
    }

    /// [`Store::apply_status`] inside a larger transaction.
    pub async fn apply_status(&mut self, s: &StatusUpdate, now: i64) -> CoreResult<String> {
        let row: Option<(i64, String)> = on_tx!(self, c => sqlx::query_as(
            "select message_id, status from message where provider_message_id = $1 and direction = 'out'")
            .bind(&s.provider_id).fetch_optional(&mut *c).await?);
        let Some((id, current)) = row else {
            return Err(CoreError::not_found("message_not_found", format!("no outbound message with provider id {}", s.provider_id)));
        };
        let cur = DeliveryStatus::parse(&current)
            .ok_or_else(|| CoreError::Internal(format!("message {id}: stored status '{current}' is not a delivery status")))?;
        if !cur.may_become(s.status) {
            return Ok(format!("message {id}: {} after {current} ignored (statuses only move forward)", s.status.as_str()));
        }
        let changed = on_tx!(self, c => sqlx::query(
            "update message set status = $1, error_code = coalesce($2, error_code), error_text = coalesce($3, error_text), updated_at = $4
             where message_id = $5 and status = $6")
            .bind(s.status.as_str()).bind(&s.error_code).bind(&s.error_text).bind(now).bind(id).bind(&current)
            .execute(&mut *c).await?.rows_affected());
        if changed == 0 {
            return Err(CoreError::conflict("concurrent_change", "the message changed while its status was applied"));
        }
        if matches!(s.status, DeliveryStatus::Failed | DeliveryStatus::Undelivered) {
            // The provider gave up on it: `message.failed`, and a broadcast's error policy.
            let code = s.error_code.as_deref().unwrap_or(s.status.as_str());
            self.message_failed(crate::ids::MessageId(id), code, s.error_text.as_deref().unwrap_or("")).await?;
        }
        Ok(format!("message {id}: {current} → {}", s.status.as_str()))
    }
}
