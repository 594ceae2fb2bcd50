//! The background workers: the inbox processor (stored webhook events → statuses and the
//! conversation) and the outbox sender (queued messages → the provider). Both claim work
//! from the database with a lease, so several replicas can run them side by side and a
//! crash loses nothing; a wake-up signal makes them react at once to new work.

use crate::config::{ProviderConfig, RetryPolicy};
use crate::group_commit::GroupCommit;
use crate::providers::{self, SendFailure};
use dropcheck_core::conversation::DOWNLOAD_FAILED;
use dropcheck_core::ids::{EventId, MessageId};
use dropcheck_core::inbox::{self, ClaimedEvent, EventOutcome, ReadyEvent, Work, EVENT_MAX_ATTEMPTS};
use dropcheck_core::media::{MediaStore, StoredMedia};
use dropcheck_core::outbox::{self, Outbound, SendOutcome, SendPlan};
use dropcheck_core::providers::Provider;
use dropcheck_core::providers::{DeliveryStatus, Retry, WebhookEvent};
use dropcheck_core::store::{MessageRow, Store};
use dropcheck_core::{now_ms, CoreError};
use futures_util::StreamExt;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::Notify;

/// Idle workers look for due work at least this often (backoffs and batched acks come due).
const POLL: Duration = Duration::from_millis(500);
/// How many due messages the sender claims at once.
const OUTBOX_BATCH: i64 = 64;
/// How many numbers are sent to at once (each number's messages go one after another).
pub const SEND_CONCURRENCY: usize = 16;
/// How many inbox loops run side by side on PostgreSQL. Each statement there is a round trip
/// to the server, so an event's work is mostly waiting; six loops, each with a small batch
/// (a loop's batch holds up the numbers in it), kept the inbox ahead of 4 000 webhooks in a
/// burst on two cores (3 × 256: 1 015 events/s processed from a backlog, 4 × 64: 1 504/s,
/// 6 × 32: 1 633/s, 8 × 32: 1 603/s; docs/PERFORMANCE.md).
const PG_INBOX_LOOPS: usize = 6;
const PG_INBOX_BATCH: i64 = 32;
/// How many due inbound events the inbox worker claims at once on SQLite (one loop: SQLite
/// has one writer), committed in as few transactions as the other writers let it.
const INBOX_BATCH: i64 = 256;
/// How many media downloads (and thumbnails) run at once.
const MEDIA_CONCURRENCY: usize = 8;
/// A claimed batch is committed in parts: whenever this many media files are ready.
const MEDIA_PER_COMMIT: usize = 32;

/// Everything the webhooks and workers share about messaging.
pub struct Messaging {
    /// The active provider; an admin may switch it while the server runs (Settings →
    /// Integrations), so it is read afresh for each webhook and each send.
    provider: RwLock<Arc<ProviderConfig>>,
    pub public_url: String,
    pub retry: RetryPolicy,
    pub max_media_bytes: u64,
    /// How long a claimed event or message stays leased to one worker.
    pub lease_ms: i64,
    pub client: reqwest::Client,
    /// Per sender number (`DROPCHECK_SEND_RATE`): governor's GCRA limiter, a well-tested
    /// implementation of exactly this, instead of a hand-rolled token bucket.
    pub limiter: DefaultDirectRateLimiter,
    pub wake_inbox: Notify,
    pub wake_outbox: Notify,
    /// The last webhook request this process refused for its signature (or a Meta
    /// handshake with the wrong verify token), shown on the integrations page.
    last_refused: Mutex<Option<Refusal>>,
    /// This server's own address (the sandbox posts its webhooks there).
    self_url: String,
    /// The vision model in effect, and how it is called.
    pub vision: crate::vision::Vision,
    /// Outbound event webhooks.
    pub webhooks: crate::webhook_out::WebhookSender,
    /// This process's counters (`/metrics`).
    pub metrics: crate::metrics::Metrics,
    /// MyOperator, when configured: the notifications API's messages go out through it.
    myoperator: RwLock<Option<Arc<crate::myoperator::MyOperatorConfig>>>,
}

impl Messaging {
    pub fn new(
        provider: ProviderConfig,
        public_url: String,
        self_url: String,
        retry: RetryPolicy,
        send_rate: u32,
        max_media_bytes: u64,
        lease_ms: i64,
        vision: crate::vision::Vision,
        webhooks: crate::webhook_out::WebhookSender,
    ) -> Self {
        let rate = NonZeroU32::new(send_rate.max(1)).expect("max(1) is non-zero");
        Self {
            provider: RwLock::new(Arc::new(provider)),
            public_url,
            retry,
            max_media_bytes,
            lease_ms,
            client: providers::http_client(),
            limiter: RateLimiter::direct(Quota::per_second(rate)),
            wake_inbox: Notify::new(),
            wake_outbox: Notify::new(),
            last_refused: Mutex::new(None),
            self_url,
            vision,
            webhooks,
            metrics: crate::metrics::Metrics::default(),
            myoperator: RwLock::new(None),
        }
    }

    /// MyOperator in effect now, if any.
    pub fn myoperator(&self) -> Option<Arc<crate::myoperator::MyOperatorConfig>> {
        self.myoperator.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn set_myoperator(&self, cfg: Option<crate::myoperator::MyOperatorConfig>) {
        *self.myoperator.write().unwrap_or_else(|e| e.into_inner()) = cfg.map(Arc::new);
    }

    /// The provider in effect now.
    pub fn provider(&self) -> Arc<ProviderConfig> {
        self.provider.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Switches the provider (the settings changed); work in flight finishes with the old one.
    pub fn set_provider(&self, p: ProviderConfig) {
        *self.provider.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(p);
    }

    /// Notes a webhook request refused for its signature or verify token.
    pub fn note_refused(&self, provider: Provider, what: &'static str) {
        self.metrics.refused(provider.as_str());
        *self.last_refused.lock().unwrap_or_else(|e| e.into_inner()) = Some(Refusal { at: now_ms(), provider, what });
    }

    pub fn last_refused(&self) -> Option<Refusal> {
        self.last_refused.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn self_url(&self) -> &str {
        &self.self_url
    }

    /// Where Twilio reports delivery ticks, with the connection override that makes it retry
    /// a callback this server could not take (a 503 under load).
    pub fn status_callback_url(&self) -> String {
        format!("{}/webhooks/twilio/status{}", self.public_url, dropcheck_core::providers::TWILIO_RETRY_FRAGMENT)
    }
}

/// A webhook request refused by this process.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub at: i64,
    pub provider: Provider,
    pub what: &'static str,
}

/// The inbox processor and the outbox sender of one server. In normal running both loop in
/// the background ([`Workers::spawn`]); tests start the server with them off and drive them
/// with [`Workers::drain`] instead of sleeping and polling.
#[derive(Clone)]
pub struct Workers {
    store: Store,
    media: MediaStore,
    messaging: Arc<Messaging>,
    recorder: Arc<Recorder>,
    /// How often held-status rules are looked for.
    automation_sweep: Duration,
}

#[derive(Clone, Copy, Debug)]
enum Loop {
    Inbox,
    Outbox,
    Vision,
    Webhooks,
}

/// How long [`Workers::drain`] keeps going before it reports work that never finishes.
const DRAIN_LIMIT: Duration = Duration::from_secs(120);

impl Workers {
    pub fn new(store: Store, media: MediaStore, messaging: Arc<Messaging>) -> Self {
        let recorder = Arc::new(outcome_recorder(store.clone()));
        Self { store, media, messaging, recorder, automation_sweep: Duration::from_secs(15) }
    }

    pub fn with_automation_sweep(mut self, every: Duration) -> Self {
        self.automation_sweep = every;
        self
    }

    /// Runs the held-status and schedule automation rules now (what the sweep loop does every
    /// `DROPCHECK_AUTOMATION_SWEEP_SECONDS`); how many runs started.
    pub async fn sweep_automations(&self) -> Result<usize, CoreError> {
        let n = self.store.sweep_held(now_ms()).await?
            + self.store.sweep_schedules(now_ms()).await?
            + self.store.sweep_birthdays(now_ms()).await?
            + self.store.sweep_delayed(now_ms()).await?
            + self.store.sweep_campaigns(now_ms()).await?;
        if n > 0 {
            // The runs queued messages and webhook calls: send them now, not at the next poll.
            self.messaging.wake_outbox.notify_one();
            self.messaging.webhooks.wake.notify_one();
        }
        Ok(n)
    }

    /// Starts the loops; they run until the returned handles are aborted. On PostgreSQL
    /// several inbox loops share the work (claims skip each other's rows, each number stays
    /// with one of them at a time), so one's round trips to the database overlap another's;
    /// SQLite has one writer, so one loop.
    pub fn spawn(&self) -> Vec<tokio::task::JoinHandle<()>> {
        let loops = if self.store.backend() == "postgresql" { PG_INBOX_LOOPS } else { 1 };
        let mut handles: Vec<_> = (0..loops).map(|_| self.spawn_loop(Loop::Inbox)).collect();
        handles.push(self.spawn_loop(Loop::Outbox));
        handles.push(self.spawn_loop(Loop::Vision));
        handles.push(self.spawn_loop(Loop::Webhooks));
        let w = self.clone();
        handles.push(tokio::spawn(async move {
            loop {
                // Each replica sweeps; a run's unique key lets only one of them start it.
                if let Err(e) = w.sweep_automations().await {
                    tracing::error!(error = ?e, "automation sweep failed");
                }
                tokio::time::sleep(w.automation_sweep).await;
            }
        }));
        handles
    }

    /// One worker loop: a batch at a time while there is work, then a nap until woken (new
    /// work) or until [`POLL`] (backoffs and delayed acknowledgments come due).
    fn spawn_loop(&self, which: Loop) -> tokio::task::JoinHandle<()> {
        let w = self.clone();
        tokio::spawn(async move {
            loop {
                let (worked, wake) = match which {
                    Loop::Inbox => (w.inbox_once().await, &w.messaging.wake_inbox),
                    Loop::Outbox => (w.outbox_once().await, &w.messaging.wake_outbox),
                    Loop::Vision => (w.vision_once().await, &w.messaging.vision.wake),
                    Loop::Webhooks => (w.webhooks_once().await, &w.messaging.webhooks.wake),
                };
                match worked {
                    Ok(true) => continue,
                    Ok(false) => {}
                    Err(e) => tracing::error!(error = ?e, worker = ?which, "worker batch failed"),
                }
                let _ = tokio::time::timeout(POLL, wake.notified()).await;
            }
        })
    }

    /// Processes one batch of due inbound events; whether there were any.
    pub async fn inbox_once(&self) -> Result<bool, CoreError> {
        run_inbox_once(&self.store, &self.media, &self.messaging).await
    }

    /// Sends one batch of due messages; whether there were any.
    pub async fn outbox_once(&self) -> Result<bool, CoreError> {
        run_outbox_once(&self.store, &self.messaging, &self.recorder).await
    }

    /// Puts one batch of due photos to the vision model; whether there were any.
    pub async fn vision_once(&self) -> Result<bool, CoreError> {
        crate::vision::vision_once(&self.store, &self.media, &self.messaging.vision).await
    }

    /// Sends one batch of due webhook deliveries; whether there were any.
    pub async fn webhooks_once(&self) -> Result<bool, CoreError> {
        crate::webhook_out::webhooks_once(&self.store, &self.messaging.webhooks).await
    }

    /// Sends webhook deliveries until none is pending, waiting for retries until they are due.
    pub async fn drain_webhooks(&self) -> Result<(), CoreError> {
        let started = std::time::Instant::now();
        loop {
            while self.webhooks_once().await? {}
            let Some(due) = self.store.next_webhook_due().await? else { return Ok(()) };
            if started.elapsed() > DRAIN_LIMIT {
                return Err(CoreError::Internal(format!("webhook deliveries still pending after {DRAIN_LIMIT:?} (next due at {due})")));
            }
            let wait = (due - now_ms()).clamp(1, 60_000) as u64;
            tokio::time::sleep(Duration::from_millis(wait)).await;
        }
    }

    /// Runs the vision checks until none is queued, waiting for retries until they are due.
    pub async fn drain_vision(&self) -> Result<(), CoreError> {
        let started = std::time::Instant::now();
        loop {
            while self.vision_once().await? {}
            let Some(due) = self.store.next_vision_due().await? else { return Ok(()) };
            if self.messaging.vision.config().is_none() {
                return Ok(());
            }
            if started.elapsed() > DRAIN_LIMIT {
                return Err(CoreError::Internal(format!("vision checks still pending after {DRAIN_LIMIT:?} (next due at {due})")));
            }
            let wait = (due - now_ms()).clamp(1, 60_000) as u64;
            tokio::time::sleep(Duration::from_millis(wait)).await;
        }
    }

    /// Processes inbound events until none is pending. Events that are not due yet (a
    /// retry's backoff) are waited for until exactly when they are due.
    pub async fn drain_inbox(&self) -> Result<(), CoreError> {
        self.drain_until(true, false).await
    }

    /// Sends until no message is queued or being sent, waiting for backoffs and delayed
    /// acknowledgments until exactly when they are due.
    pub async fn drain_outbox(&self) -> Result<(), CoreError> {
        self.drain_until(false, true).await
    }

    /// Both: every inbound event processed, and every message it queued sent or failed.
    pub async fn drain(&self) -> Result<(), CoreError> {
        self.drain_until(true, true).await
    }

    async fn drain_until(&self, inbox: bool, outbox: bool) -> Result<(), CoreError> {
        let started = std::time::Instant::now();
        loop {
            let mut worked = false;
            if inbox {
                while self.inbox_once().await? {
                    worked = true;
                }
            }
            if outbox {
                while self.outbox_once().await? {
                    worked = true;
                }
            }
            if worked {
                continue;
            }
            let due = match (inbox, outbox) {
                (true, false) => self.store.next_event_due().await?,
                (false, true) => self.store.next_outbound_due().await?,
                _ => match (self.store.next_event_due().await?, self.store.next_outbound_due().await?) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                },
            };
            let Some(due) = due else { return Ok(()) };
            if started.elapsed() > DRAIN_LIMIT {
                return Err(CoreError::Internal(format!("work still pending after {DRAIN_LIMIT:?} (next due at {due})")));
            }
            let wait = (due - now_ms()).clamp(1, 60_000) as u64;
            tokio::time::sleep(Duration::from_millis(wait)).await;
        }
    }
}

/// Processes a batch of due inbound events: claimed together, their media downloaded and
/// stored concurrently (at most [`MEDIA_CONCURRENCY`] at once), then applied in order, in a
/// transaction whenever [`MEDIA_PER_COMMIT`] media files are ready and one for the rest: a
/// photo reaches the drop page within a moment of its download, not after the whole batch's.
/// Returns whether there were any.
async fn run_inbox_once(store: &Store, media: &MediaStore, m: &Messaging) -> Result<bool, CoreError> {
    let batch = if store.backend() == "postgresql" { PG_INBOX_BATCH } else { INBOX_BATCH };
    let claimed = store.claim_events(now_ms(), m.lease_ms, batch).await?;
    if claimed.is_empty() {
        return Ok(false);
    }
    let started = std::time::Instant::now();
    // Not yet committed, in claim order: what is given back if a commit fails.
    let mut uncommitted: Vec<EventId> = claimed.iter().map(|e| e.event_id).collect();
    let mut prepared = futures_util::stream::iter(claimed).map(|ev| prepare(media, m, ev)).buffered(MEDIA_CONCURRENCY);
    let mut chunk: Vec<ReadyEvent> = Vec::new();
    let mut media_in_chunk = 0;
    while let Some(ev) = prepared.next().await {
        if let Work::Apply(photos) = &ev.work {
            media_in_chunk += photos.len();
        }
        chunk.push(ev);
        if media_in_chunk >= MEDIA_PER_COMMIT {
            apply_chunk(store, m, std::mem::take(&mut chunk), &mut uncommitted, started).await?;
            media_in_chunk = 0;
        }
    }
    if !chunk.is_empty() {
        apply_chunk(store, m, chunk, &mut uncommitted, started).await?;
    }
    Ok(true)
}

/// Applies the next events of a claimed batch in one transaction. If that fails, nothing of
/// it (or after it) was committed: every event not yet committed is given back.
async fn apply_chunk(
    store: &Store,
    m: &Messaging,
    chunk: Vec<ReadyEvent>,
    uncommitted: &mut Vec<EventId>,
    claimed_at: std::time::Instant,
) -> Result<(), CoreError> {
    let n = chunk.len();
    let outcomes = match store.process_events(chunk, &m.retry, now_ms()).await {
        Ok(o) => o,
        Err(e) => {
            if let Err(release) = store.release_events(uncommitted).await {
                tracing::error!(error = ?release, "giving back an uncommitted batch failed; its leases will expire");
            }
            return Err(e);
        }
    };
    uncommitted.drain(..n);
    let took = claimed_at.elapsed().as_secs_f64();
    for _ in 0..n {
        m.metrics.event_processing.observe(took);
    }
    for (id, outcome) in &outcomes {
        match outcome {
            EventOutcome::Done(r) => tracing::info!(event = id.get(), result = %r, "event processed"),
            EventOutcome::Retry { error, .. } => tracing::warn!(event = id.get(), error = %error, "event will be retried"),
            EventOutcome::Failed(e) => tracing::error!(event = id.get(), error = %e, "event failed"),
        }
    }
    // Replies were queued: let the sender look now (and the vision worker: photos were filed).
    m.wake_outbox.notify_one();
    m.vision.wake.notify_one();
    Ok(())
}

/// Downloads and stores an event's media, before its transaction.
async fn prepare(media: &MediaStore, m: &Messaging, ev: ClaimedEvent) -> ReadyEvent {
    let WebhookEvent::Message(msg) = &ev.event else { return ReadyEvent { event: ev, work: Work::Apply(vec![]) } };
    let mut photos: Vec<Result<StoredMedia, String>> = Vec::with_capacity(msg.media.len());
    let retry = |error: String| Work::Decided(inbox::retry_or_fail(ev.attempts, error, &m.retry, now_ms()));
    for item in &msg.media {
        match providers::fetch_media(&m.client, &m.provider(), item, m.max_media_bytes).await {
            Ok((bytes, content_type)) => {
                // JPEG and PNG are checklist photos; anything else is kept as an attachment.
                let stored = if matches!(content_type.as_str(), "image/jpeg" | "image/jpg" | "image/png") {
                    media.store_image(bytes).await
                } else {
                    media.store_file(bytes, &content_type).await
                };
                match stored {
                    Ok(stored) => photos.push(Ok(stored)),
                    Err(CoreError::Input(e)) => photos.push(Err(e.message)),
                    Err(e) => {
                        let work = retry(format!("storing media: {e}"));
                        return ReadyEvent { event: ev, work };
                    }
                }
            }
            // Transient: the whole event is retried with backoff; after the last attempt the
            // message is still processed, the photo marked as not received.
            Err(f) if f.retryable && ev.attempts < EVENT_MAX_ATTEMPTS => {
                let work = retry(f.message);
                return ReadyEvent { event: ev, work };
            }
            Err(f) if f.retryable => photos.push(Err(format!("{DOWNLOAD_FAILED}{} (after {} attempts)", f.message, ev.attempts))),
            Err(f) => photos.push(Err(format!("{DOWNLOAD_FAILED}{}", f.message))),
        }
    }
    ReadyEvent { event: ev, work: Work::Apply(photos) }
}

/// Sends a batch of due outbound messages: claimed together in one statement, sent
/// concurrently across numbers (up to [`SEND_CONCURRENCY`] at once) and in queue order
/// within one number. Returns whether there were any.
async fn run_outbox_once(store: &Store, m: &Messaging, recorder: &Recorder) -> Result<bool, CoreError> {
    let batch = store.claim_outbound(now_ms(), m.lease_ms, OUTBOX_BATCH).await?;
    if batch.is_empty() {
        return Ok(false);
    }
    let mut by_phone: Vec<Vec<Outbound>> = Vec::new();
    for msg in batch {
        match by_phone.iter_mut().find(|g| g[0].phone == msg.phone) {
            Some(g) => g.push(msg),
            None => by_phone.push(vec![msg]),
        }
    }
    let results: Vec<Result<(), CoreError>> = futures_util::stream::iter(by_phone)
        .map(|group| async move {
            for msg in group {
                let outcome = send_one(store, m, msg).await?;
                recorder.write(outcome).await.map_err(CoreError::Internal)?;
            }
            Ok(())
        })
        .buffer_unordered(SEND_CONCURRENCY)
        .collect()
        .await;
    // A failure to record leaves the message leased; it is claimed again when the lease ends.
    results.into_iter().collect::<Result<Vec<()>, _>>()?;
    Ok(true)
}

/// Sends one claimed message; returns what became of it (recorded by the caller). What the
/// message may do is decided by `outbox::plan_send` and what a failure means by
/// `outbox::outcome_after_failure`; this only does the I/O.
async fn send_one(store: &Store, m: &Messaging, msg: Outbound) -> Result<SendOutcome, CoreError> {
    if msg.channel == "notifications" {
        if let Some(cfg) = m.myoperator() {
            let outcome = myoperator_send(m, &cfg, msg).await;
            let (result, code) = match &outcome {
                SendOutcome::Sent { .. } => ("sent", ""),
                SendOutcome::Failed { code, .. } => ("failed", code.as_str()),
                SendOutcome::Throttled { code, .. } => ("throttled", code.as_str()),
                _ => ("deferred", ""),
            };
            m.metrics.send("myoperator", result, code);
            return Ok(outcome);
        }
    }
    let provider = m.provider();
    let outcome = attempt_send(store, m, &provider, msg).await?;
    let (result, code) = match &outcome {
        SendOutcome::Sent { .. } => ("sent", ""),
        SendOutcome::Failed { code, .. } => ("failed", code.as_str()),
        SendOutcome::Throttled { code, .. } => ("throttled", code.as_str()),
        _ => ("deferred", ""),
    };
    m.metrics.send(provider.kind().as_str(), result, code);
    Ok(outcome)
}

/// A notification through MyOperator: Meta's rules for what may go (MyOperator is a Meta
/// partner: outside the 24-hour window only a Meta template), its reference the message's id.
async fn myoperator_send(m: &Messaging, cfg: &crate::myoperator::MyOperatorConfig, msg: Outbound) -> SendOutcome {
    let (content, fallback) = match outbox::plan_send(&msg, Provider::Meta, 0, now_ms()) {
        SendPlan::Defer { until } => return SendOutcome::Deferred { message_id: msg.message_id, until },
        SendPlan::Fail { code, text } => return failed(&msg, code, &text, None),
        SendPlan::Send { content, fallback, .. } => (content, fallback),
    };
    let reference = format!("dropcheck-{}", msg.message_id.get());
    m.limiter.until_ready().await;
    let mut sent_as = content.sent_as();
    let mut result = crate::myoperator::send(&m.client, cfg, &msg.phone, &content, &reference).await;
    if let (Err(SendFailure { retry: Retry::NeedsTemplate, .. }), Some(t)) = (&result, &fallback) {
        sent_as = t.sent_as();
        result = crate::myoperator::send(&m.client, cfg, &msg.phone, t, &reference).await;
    }
    match result {
        Ok(acc) => {
            tracing::info!(message_id = msg.message_id.get(), sent_as = %sent_as, "notification accepted by MyOperator");
            SendOutcome::Sent { message_id: msg.message_id, provider_id: acc.provider_id, status: acc.status, sent_as, at: now_ms() }
        }
        Err(failure) => {
            tracing::warn!(message_id = msg.message_id.get(), code = %failure.code, retry = ?failure.retry, "MyOperator send failed: {}", failure.message);
            outbox::outcome_after_failure(&msg, failure, &m.retry, now_ms())
        }
    }
}

async fn attempt_send(store: &Store, m: &Messaging, provider: &ProviderConfig, msg: Outbound) -> Result<SendOutcome, CoreError> {
    let backlog = if msg.waits_for_burst() { store.inbox_backlog(msg.phone.as_str()).await? } else { 0 };
    let (content, fallback, reconcile_first) = match outbox::plan_send(&msg, provider.kind(), backlog, now_ms()) {
        SendPlan::Defer { until } => return Ok(SendOutcome::Deferred { message_id: msg.message_id, until }),
        SendPlan::Fail { code, text } => return Ok(failed(&msg, code, &text, None)),
        SendPlan::Send { content, fallback, reconcile_first } => (content, fallback, reconcile_first),
    };
    // The last attempt may have reached the provider after all: look before sending again.
    if reconcile_first {
        match providers::find_already_sent(&m.client, provider, msg.phone.as_str(), &msg.body, msg.created_at).await {
            Ok(Some(provider_id)) => {
                tracing::info!(message_id = msg.message_id.get(), "an ambiguous failure had in fact been sent; recorded, not resent");
                let (sent_as, at) = (content.sent_as(), now_ms());
                return Ok(SendOutcome::Sent { message_id: msg.message_id, provider_id, status: DeliveryStatus::Sent, sent_as, at });
            }
            Ok(None) => {}
            // Not known whether it went: try again later rather than risk a second copy.
            Err(f) => return Ok(outbox::outcome_after_failure(&msg, SendFailure { retry: Retry::Yes, ..f }, &m.retry, now_ms())),
        }
    }
    m.limiter.until_ready().await;
    let mut sent_as = content.sent_as();
    let mut result = providers::send(&m.client, provider, msg.phone.as_str(), &content, &m.status_callback_url()).await;
    if let (Err(SendFailure { retry: Retry::NeedsTemplate, .. }), Some(t)) = (&result, &fallback) {
        m.limiter.until_ready().await;
        sent_as = t.sent_as();
        result = providers::send(&m.client, provider, msg.phone.as_str(), t, &m.status_callback_url()).await;
    }
    Ok(match result {
        Ok(acc) => {
            tracing::info!(message_id = msg.message_id.get(), attempt = msg.attempts, sent_as = %sent_as, "message accepted by the provider");
            SendOutcome::Sent { message_id: msg.message_id, provider_id: acc.provider_id, status: acc.status, sent_as, at: now_ms() }
        }
        Err(failure) => {
            let (code, message) = (failure.code.clone(), failure.message.clone());
            let outcome = outbox::outcome_after_failure(&msg, failure, &m.retry, now_ms());
            match &outcome {
                SendOutcome::Throttled { until, at, .. } => {
                    tracing::info!(message_id = msg.message_id.get(), code = %code, wait_ms = until - at, "provider asked to wait: {message}")
                }
                SendOutcome::Failed { retry_at, .. } => {
                    tracing::warn!(message_id = msg.message_id.get(), attempt = msg.attempts, code = %code, retry = retry_at.is_some(), "send failed: {message}")
                }
                _ => {}
            }
            outcome
        }
    })
}

/// Sends one queued message now, outside the sender's loop (`immediate: true` in the
/// notifications API), and returns it as stored afterwards. A message a sender claimed first
/// is returned as it stands.
pub async fn send_now(store: &Store, m: &Messaging, message_id: MessageId) -> Result<MessageRow, CoreError> {
    if let Some(msg) = store.claim_outbound_now(message_id, now_ms(), m.lease_ms).await? {
        let outcome = send_one(store, m, msg).await?;
        store.record_outcomes(&[outcome]).await?;
    }
    store.message(message_id).await
}

fn failed(msg: &Outbound, code: &str, text: &str, retry_at: Option<i64>) -> SendOutcome {
    SendOutcome::Failed { message_id: msg.message_id, code: code.into(), text: text.into(), retry_at, at: now_ms() }
}

/// The sender's outcomes are group-committed: sends that finish together share a transaction.
pub type Recorder = GroupCommit<SendOutcome, ()>;

fn outcome_recorder(store: Store) -> Recorder {
    GroupCommit::start(OUTBOX_BATCH as usize, store.writers(), move |outcomes: Vec<SendOutcome>| {
        let store = store.clone();
        async move {
            let n = outcomes.len();
            match store.record_outcomes(&outcomes).await {
                Ok(()) => vec![Ok(()); n],
                Err(e) => {
                    // Not recorded: the messages stay leased and are claimed again when the
                    // lease ends (the ambiguity check then finds any that were sent).
                    tracing::error!(error = ?e, "recording send outcomes failed");
                    vec![Err(e.to_string()); n]
                }
            }
        }
    })
}
