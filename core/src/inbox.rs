//! The WhatsApp inbox: the webhook ledger, the inbound event queue, and what an inbound
//! message does (SPEC sections 2 and 4.4).
//!
//! A webhook is answered only after [`Store::record_webhook`] committed its receipt and one
//! `inbound_event` row per message or status. `(provider, dedupe_key)` is unique, so a
//! redelivery has no second effect. Workers [`Store::claim_event`] with a lease, events of
//! one number strictly in arrival order, and apply them from the stored payload (so any
//! event can be replayed): statuses move outbound messages forward, messages drive the
//! conversation. Every reply is rendered from a stored template and queued in the outbox.

use minijinja::context;
use serde::Serialize;
use sqlx::FromRow;

use crate::conversation::{parse_caption, parse_text, Command};
use crate::domain::{DropNumber, DropStatus, Phone, StepNo, Verdict};
use crate::error::{CoreError, CoreResult, InputError};
use crate::linking::VerifyOutcome;
use crate::media::StoredMedia;
use crate::providers::{DeliveryStatus, InboundMessage, MessageKind, Provider, StatusUpdate, WebhookEvent};
use crate::store::{on_db, ActorRef, Db, DropDetail, NewPhoto, Store};
use crate::templates;

/// A conversation's context (active project and drop) expires after 30 minutes idle; photos
/// waiting for a drop number are kept as long.
pub const CONTEXT_IDLE_MS: i64 = 30 * 60 * 1000;
/// No number gets more than this many bot replies a minute (beyond it replies are skipped,
/// never the processing of what the contractor sent).
pub const REPLIES_PER_MINUTE: i64 = 10;
/// How a media item that could not be downloaded after every retry is passed to
/// [`Store::handle_message`]: `Err` with a message starting with this.
pub const DOWNLOAD_FAILED: &str = "download failed: ";

/// A burst of photos is acknowledged once, this long after its last photo.
pub const ACK_DELAY_MS: i64 = 4_000;

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
    pub receipt_id: i64,
    pub new_events: usize,
    pub duplicates: usize,
}

#[derive(Debug, Clone)]
pub struct ClaimedEvent {
    pub event_id: i64,
    pub provider: String,
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
    pub receipt_id: i64,
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
    pub event_id: i64,
    pub receipt_id: Option<i64>,
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

/// A file kept with a drop that is not a checklist photo.
#[derive(Debug, Clone, Serialize, FromRow)]
pub struct AttachmentRow {
    pub attachment_id: i64,
    pub drop_id: Option<i64>,
    pub phone: String,
    pub sha256: String,
    pub mime_type: String,
    pub size_bytes: i64,
    pub received_at: i64,
}

#[derive(Debug, Clone, Default)]
struct Ctx {
    project_id: Option<i64>,
    drop_id: Option<i64>,
}

/// Collects what one inbound message did, for the event's result column.
#[derive(Default)]
struct Effects(Vec<String>);

impl Effects {
    fn note(&mut self, s: impl Into<String>) {
        self.0.push(s.into());
    }
    fn finish(self) -> String {
        if self.0.is_empty() {
            "nothing to do".into()
        } else {
            self.0.join("; ")
        }
    }
}

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
        Ok(on_db!(self, pool => {
            let mut tx = pool.begin().await?;
            let mut outcomes = Vec::with_capacity(batch.len());
            for (w, payloads) in batch.iter().zip(&payloads) {
                let (verdict, error) = match &w.parsed {
                    Ok(_) => ("accepted", None),
                    Err(e) => ("rejected", Some(e.message.as_str())),
                };
                let events: &[WebhookEvent] = w.parsed.as_deref().unwrap_or(&[]);
                let receipt_id: i64 = sqlx::query_scalar(
                    "insert into webhook_receipt (provider, path, received_at, content_type, body, verdict, error)
                     values ($1, $2, $3, $4, $5, $6, $7) returning receipt_id")
                    .bind(w.provider.as_str()).bind(&w.path).bind(w.received_at).bind(&w.content_type).bind(&w.body)
                    .bind(verdict).bind(error)
                    .fetch_one(&mut *tx).await?;
                let mut new_events = 0usize;
                for (e, payload) in events.iter().zip(payloads) {
                    let done = sqlx::query(
                        "insert into inbound_event (receipt_id, provider, dedupe_key, kind, phone, payload, next_attempt_at, received_at)
                         values ($1, $2, $3, $4, $5, $6, $7, $7) on conflict (provider, dedupe_key) do nothing")
                        .bind(receipt_id).bind(w.provider.as_str()).bind(e.dedupe_key()).bind(e.kind())
                        .bind(if matches!(e, WebhookEvent::Message(_)) { e.phone().unwrap_or_default() } else { "" })
                        .bind(payload).bind(w.received_at)
                        .execute(&mut *tx).await?;
                    new_events += done.rows_affected() as usize;
                }
                let duplicates = events.len() - new_events;
                if new_events != 0 || duplicates != 0 {
                    sqlx::query("update webhook_receipt set event_count = $1, duplicate_count = $2 where receipt_id = $3")
                        .bind(new_events as i64).bind(duplicates as i64).bind(receipt_id).execute(&mut *tx).await?;
                }
                outcomes.push(ReceiptOutcome { receipt_id, new_events, duplicates });
            }
            tx.commit().await?;
            outcomes
        }))
    }

    /// Claims the oldest due event whose number has no earlier unfinished event, with a lease
    /// (an expired lease makes the event claimable again: a crashed worker loses nothing).
    pub async fn claim_event(&self, now: i64, lease_ms: i64) -> CoreResult<Option<ClaimedEvent>> {
        on_db!(self, pool => {
            sqlx::query("update inbound_event set state = 'pending' where state = 'processing' and lease_until < $1")
                .bind(now).execute(pool).await?;
            for _ in 0..5 {
                let id: Option<i64> = sqlx::query_scalar(
                    "select e.event_id from inbound_event e
                     where e.state = 'pending' and e.next_attempt_at <= $1
                       and not exists (select 1 from inbound_event x where e.phone <> '' and x.phone = e.phone
                                       and x.event_id < e.event_id and x.state in ('pending', 'processing'))
                     order by e.event_id limit 1")
                    .bind(now).fetch_optional(pool).await?;
                let Some(id) = id else { return Ok(None) };
                let claimed = sqlx::query(
                    "update inbound_event set state = 'processing', lease_until = $1, attempts = attempts + 1
                     where event_id = $2 and state = 'pending'")
                    .bind(now + lease_ms).bind(id).execute(pool).await?;
                if claimed.rows_affected() != 1 {
                    continue; // another worker took it
                }
                let (provider, payload, attempts): (String, String, i64) =
                    sqlx::query_as("select provider, payload, attempts from inbound_event where event_id = $1")
                        .bind(id).fetch_one(pool).await?;
                match serde_json::from_str::<WebhookEvent>(&payload) {
                    Ok(event) => return Ok(Some(ClaimedEvent { event_id: id, provider, event, attempts })),
                    Err(e) => {
                        sqlx::query("update inbound_event set state = 'failed', error = $1, processed_at = $2 where event_id = $3")
                            .bind(format!("stored payload unreadable: {e}")).bind(now).bind(id).execute(pool).await?;
                    }
                }
            }
            Ok(None)
        })
    }

    pub async fn finish_event(&self, event_id: i64, outcome: &EventOutcome, now: i64) -> CoreResult<()> {
        on_db!(self, pool => {
            match outcome {
                EventOutcome::Done(result) => sqlx::query(
                    "update inbound_event set state = 'done', result = $1, error = null, lease_until = null, processed_at = $2 where event_id = $3")
                    .bind(result).bind(now).bind(event_id).execute(pool).await?,
                EventOutcome::Retry { error, at } => sqlx::query(
                    "update inbound_event set state = 'pending', error = $1, lease_until = null, next_attempt_at = $2 where event_id = $3")
                    .bind(error).bind(*at).bind(event_id).execute(pool).await?,
                EventOutcome::Failed(error) => sqlx::query(
                    "update inbound_event set state = 'failed', error = $1, lease_until = null, processed_at = $2 where event_id = $3")
                    .bind(error).bind(now).bind(event_id).execute(pool).await?,
            };
        });
        Ok(())
    }

    /// Puts an event back in the queue (the ledger's "reprocess").
    pub async fn requeue_event(&self, event_id: i64, now: i64) -> CoreResult<()> {
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

    /// Events by state: (pending + processing, done, failed).
    pub async fn event_counts(&self) -> CoreResult<(i64, i64, i64)> {
        let rows: Vec<(String, i64)> =
            on_db!(self, pool => sqlx::query_as("select state, count(*) from inbound_event group by state").fetch_all(pool).await?);
        let n = |names: &[&str]| rows.iter().filter(|(s, _)| names.contains(&s.as_str())).map(|(_, n)| n).sum();
        Ok((n(&["pending", "processing"]), n(&["done"]), n(&["failed"])))
    }

    // ------------------------------------------------------------ statuses

    /// Applies a delivery status to the outbound message with that provider id. Statuses only
    /// move forward; a late or repeated callback changes nothing.
    pub async fn apply_status(&self, s: &StatusUpdate, now: i64) -> CoreResult<String> {
        let row: Option<(i64, String)> = on_db!(self, pool => sqlx::query_as(
            "select message_id, status from message where provider_message_id = $1 and direction = 'out'")
            .bind(&s.provider_id).fetch_optional(pool).await?);
        let Some((id, current)) = row else {
            return Err(CoreError::not_found("message_not_found", format!("no outbound message with provider id {}", s.provider_id)));
        };
        let cur = DeliveryStatus::parse(&current).unwrap_or(DeliveryStatus::Queued);
        if !cur.may_become(s.status) {
            return Ok(format!("message {id}: {} after {current} ignored (statuses only move forward)", s.status.as_str()));
        }
        let changed = on_db!(self, pool => sqlx::query(
            "update message set status = $1, error_code = coalesce($2, error_code), error_text = coalesce($3, error_text), updated_at = $4
             where message_id = $5 and status = $6")
            .bind(s.status.as_str()).bind(&s.error_code).bind(&s.error_text).bind(now).bind(id).bind(&current)
            .execute(pool).await?.rows_affected());
        if changed == 0 {
            return Err(CoreError::conflict("concurrent_change", "the message changed while its status was applied"));
        }
        Ok(format!("message {id}: {current} → {}", s.status.as_str()))
    }

    // ------------------------------------------------------------ messages

    /// What an inbound message does: records it, updates the contractor's conversation, files
    /// photos (already downloaded and stored: `photos` in the message's media order), and
    /// queues the replies. Idempotent for a replayed event: the message row and the photos are
    /// keyed by the provider's ids and digests.
    pub async fn handle_message(&self, msg: &InboundMessage, photos: &[Result<StoredMedia, String>], now: i64) -> CoreResult<String> {
        let mut fx = Effects::default();
        let phone = match Phone::parse(&msg.from) {
            Ok(p) => p,
            Err(e) => return Ok(format!("sender {} is not a phone number ({}); stored only", msg.from, e.message)),
        };
        let contact_id = self.upsert_contact(&phone, &msg.profile_name).await?;
        self.note_inbound(&phone, now).await?;
        on_db!(self, pool => {
            sqlx::query(
                "insert into message (direction, phone, body, template, drop_id, status, provider_message_id, attempts, created_at, updated_at)
                 values ('in', $1, $2, null, null, 'received', $3, 0, $4, $4) on conflict (provider_message_id) do nothing")
                .bind(phone.as_str()).bind(inbound_text(msg)).bind(&msg.provider_id).bind(now).execute(pool).await?;
        });
        let mut ctx = self.conversation(phone.as_str(), now).await?;
        match &msg.kind {
            MessageKind::Media => self.file_photos(&phone, msg, photos, &mut ctx, now, &mut fx).await?,
            MessageKind::Other(kind) => {
                fx.note(format!("{kind} message stored"));
                self.reply(&phone, "unsupported", context! { kind }, None, None, now, &mut fx).await?;
            }
            MessageKind::Text => match parse_text(&msg.body) {
                Command::Stop => {
                    self.set_opt_out(contact_id, true).await?;
                    fx.note("opted out");
                    self.reply(&phone, "stopped", context! {}, None, None, now, &mut fx).await?;
                }
                Command::Start => {
                    self.set_opt_out(contact_id, false).await?;
                    fx.note("opted back in");
                    self.reply(&phone, "started", context! {}, None, None, now, &mut fx).await?;
                }
                // An opted-out number's drops and DONE still work; `reply` sends it nothing.
                _ => self.handle_command(&phone, msg, &mut ctx, now, &mut fx).await?,
            },
        }
        self.save_conversation(phone.as_str(), &ctx, now).await?;
        if let Some(drop_id) = ctx.drop_id {
            // The drop's timeline shows what the contractor sent about it.
            on_db!(self, pool => { sqlx::query("update message set drop_id = $1 where provider_message_id = $2 and direction = 'in' and drop_id is null")
                .bind(drop_id).bind(&msg.provider_id).execute(pool).await?; });
        }
        Ok(fx.finish())
    }

    async fn handle_command(&self, phone: &Phone, msg: &InboundMessage, ctx: &mut Ctx, now: i64, fx: &mut Effects) -> CoreResult<()> {
        match parse_text(&msg.body) {
            Command::Drop(dn) => {
                if let Some(d) = self.open_drop(phone, &dn, ctx, now, fx).await? {
                    let attached = self.attach_held(phone, &d, now, fx).await?;
                    let d = if attached > 0 { self.drop_detail(&dn).await? } else { d };
                    let d = self.complete_if_ready(phone, d, fx).await?;
                    let (done, total, missing, next) = progress(&d);
                    let with_qa = with_qa(&d);
                    self.reply(
                        phone,
                        "drop_opened",
                        context! { drop_number => &d.drop_number, project => &d.project, done, total, missing, next_step => next, with_qa },
                        Some(d.drop_id),
                        None,
                        now,
                        fx,
                    )
                    .await?;
                }
            }
            Command::Done(dn) => {
                let d = match dn {
                    Some(dn) => self.open_drop(phone, &dn, ctx, now, fx).await?,
                    None => match ctx.drop_id {
                        Some(id) => Some(self.drop_detail_by_id(id).await?),
                        None => None,
                    },
                };
                match d {
                    Some(d) => self.finish_drop(phone, d, now, fx).await?,
                    None => self.reply(phone, "status", context! { drop_number => None::<String> }, None, None, now, fx).await?,
                }
            }
            Command::Help => self.reply(phone, "help", context! {}, None, None, now, fx).await?,
            Command::Status => {
                let d = match ctx.drop_id {
                    Some(id) => Some(self.drop_detail_by_id(id).await?),
                    None => None,
                };
                let vars = match &d {
                    Some(d) => {
                        let (done, total, missing, _) = progress(d);
                        context! { drop_number => &d.drop_number, project => &d.project, status => d.status.label(), done, total, missing }
                    }
                    None => context! { drop_number => None::<String> },
                };
                self.reply(phone, "status", vars, d.as_ref().map(|d| d.drop_id), None, now, fx).await?;
            }
            Command::Drops => {
                #[derive(Serialize)]
                struct Open {
                    number: String,
                    status: &'static str,
                }
                let rows: Vec<(String, String)> = on_db!(self, pool => sqlx::query_as(
                    "select d.drop_number, d.status from drop_job d join contact c on c.contact_id = d.contractor_id
                     where c.phone = $1 and d.status <> 'approved' order by d.activity_at desc limit 20")
                    .bind(phone.as_str()).fetch_all(pool).await?);
                let drops: Vec<Open> = rows
                    .into_iter()
                    .map(|(number, s)| Open { number, status: DropStatus::parse(&s).map(|s| s.label()).unwrap_or("unknown") })
                    .collect();
                self.reply(phone, "drops", context! { drops }, None, None, now, fx).await?;
            }
            Command::Project(name) => match self.project_by_name(&name).await? {
                Some(p) => {
                    ctx.project_id = Some(p.project_id);
                    ctx.drop_id = None;
                    fx.note(format!("project {}", p.name));
                    self.reply(phone, "project_set", context! { project => p.name }, None, None, now, fx).await?;
                }
                None => {
                    let projects: Vec<String> = self.projects().await?.into_iter().map(|p| p.name).collect();
                    self.reply(phone, "project_unknown", context! { name, projects }, None, None, now, fx).await?;
                }
            },
            Command::Clear => {
                *ctx = Ctx::default();
                fx.note("context cleared");
                self.reply(phone, "cleared", context! {}, None, None, now, fx).await?;
            }
            Command::Verify(code) => match self.verify_phone_link(phone, &code, None, now).await? {
                VerifyOutcome::Linked { user_id } | VerifyOutcome::AlreadyLinked { user_id } => {
                    let email = self.user(user_id).await?.email;
                    fx.note(format!("phone linked to user {user_id}"));
                    self.reply(phone, "phone_linked", context! { email }, None, None, now, fx).await?;
                }
                refused => {
                    // The code itself is never written to the ledger or the logs.
                    let reason = match refused.into_result() {
                        Err(e) => e.public_message(),
                        Ok(_) => String::new(),
                    };
                    fx.note(format!("phone link refused: {reason}"));
                    self.reply(phone, "phone_not_linked", context! { reason }, None, None, now, fx).await?;
                }
            },
            // `handle_message` applies STOP/START itself before calling this.
            Command::Stop | Command::Start => {}
            Command::Unknown => {
                fx.note("text stored");
                self.reply(phone, "hint", context! {}, None, None, now, fx).await?;
            }
        }
        Ok(())
    }

    /// The drop a contractor names: found, or created (collecting) in the conversation's
    /// project. A number the project's pattern refuses gets a reply saying so.
    async fn open_drop(&self, phone: &Phone, dn: &DropNumber, ctx: &mut Ctx, now: i64, fx: &mut Effects) -> CoreResult<Option<DropDetail>> {
        match self.drop_detail(dn).await {
            Ok(d) => {
                ctx.drop_id = Some(d.drop_id);
                ctx.project_id = Some(d.project_id);
                fx.note(format!("drop {dn} active"));
                return Ok(Some(d));
            }
            Err(CoreError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        let project = match ctx.project_id {
            Some(id) => self.project(id).await.ok(),
            None => None,
        };
        let project = match project {
            Some(p) => p,
            None => match self.projects().await?.into_iter().min_by_key(|p| p.project_id) {
                Some(p) => p,
                None => {
                    self.reply(
                        phone,
                        "drop_refused",
                        context! { message => "No project is set up yet; ask your coordinator." },
                        None,
                        None,
                        now,
                        fx,
                    )
                    .await?;
                    return Ok(None);
                }
            },
        };
        let actor = ActorRef::system(phone.as_str());
        match self.create_drop(&project, dn, Some(phone), DropStatus::Collecting, &actor).await {
            Ok(_) => {
                let d = self.drop_detail(dn).await?;
                ctx.drop_id = Some(d.drop_id);
                ctx.project_id = Some(d.project_id);
                fx.note(format!("drop {dn} created"));
                Ok(Some(d))
            }
            Err(CoreError::Input(e)) => {
                fx.note(format!("drop {dn} refused: {}", e.message));
                self.reply(phone, "drop_refused", context! { message => e.message }, None, None, now, fx).await?;
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// `DONE`: a complete collecting drop goes to review; an incomplete drop whose rejected
    /// steps all have new photos is resubmitted; otherwise the reply lists what is missing.
    async fn finish_drop(&self, phone: &Phone, d: DropDetail, now: i64, fx: &mut Effects) -> CoreResult<()> {
        let actor = ActorRef::system(phone.as_str());
        let number = DropNumber::parse(&d.drop_number)?;
        let vars = |missing: Vec<String>| context! { drop_number => &d.drop_number, status => d.status.label(), missing };
        match d.status {
            DropStatus::Collecting => {
                let missing: Vec<String> = d.steps.iter().filter(|s| s.photos.is_empty()).map(step_label).collect();
                if missing.is_empty() {
                    self.complete(&number, &actor).await?;
                    fx.note(format!("drop {} submitted", d.drop_number));
                    self.reply(phone, "drop_submitted", vars(vec![]), Some(d.drop_id), None, now, fx).await?;
                } else {
                    fx.note(format!("drop {} not ready", d.drop_number));
                    self.reply(phone, "drop_not_ready", vars(missing), Some(d.drop_id), None, now, fx).await?;
                }
            }
            DropStatus::Incomplete => {
                let missing: Vec<String> =
                    d.rejected_steps().filter(|s| !s.photos.iter().any(|p| p.round > d.round)).map(step_label).collect();
                if missing.is_empty() {
                    self.resubmit(&number, &actor).await?;
                    fx.note(format!("drop {} resubmitted", d.drop_number));
                    self.reply(phone, "drop_resubmitted", vars(vec![]), Some(d.drop_id), None, now, fx).await?;
                } else {
                    fx.note(format!("drop {} not ready", d.drop_number));
                    self.reply(phone, "drop_not_ready", vars(missing), Some(d.drop_id), None, now, fx).await?;
                }
            }
            // Already with QA (it completed itself when its last photo arrived): DONE is
            // confirmed, not answered "nothing to do".
            DropStatus::Unreviewed => self.reply(phone, "drop_submitted", vars(vec![]), Some(d.drop_id), None, now, fx).await?,
            DropStatus::Resubmitted => self.reply(phone, "drop_resubmitted", vars(vec![]), Some(d.drop_id), None, now, fx).await?,
            _ => self.reply(phone, "drop_waiting", vars(vec![]), Some(d.drop_id), None, now, fx).await?,
        }
        Ok(())
    }

    /// A collecting drop whose every step has a photo goes to review by itself (its history
    /// says why), unless its project waits for the contractor's `DONE`. Returns the drop as
    /// it is now.
    async fn complete_if_ready(&self, phone: &Phone, d: DropDetail, fx: &mut Effects) -> CoreResult<DropDetail> {
        if d.status != DropStatus::Collecting || d.steps.is_empty() || d.steps.iter().any(|s| s.photos.is_empty()) {
            return Ok(d);
        }
        if self.project(d.project_id).await?.wait_for_done {
            return Ok(d);
        }
        let number = DropNumber::parse(&d.drop_number)?;
        self.complete_because(&number, &ActorRef::system(phone.as_str()), Some("every step has a photo")).await?;
        fx.note(format!("drop {} complete: every step has a photo", d.drop_number));
        self.drop_detail(&number).await
    }

    /// Files the photos of a media message on the active (or captioned) drop, or holds them
    /// until a drop number arrives.
    async fn file_photos(
        &self,
        phone: &Phone,
        msg: &InboundMessage,
        photos: &[Result<StoredMedia, String>],
        ctx: &mut Ctx,
        now: i64,
        fx: &mut Effects,
    ) -> CoreResult<()> {
        let caption = parse_caption(&msg.body);
        let mut drop = match &caption.drop {
            Some(dn) => self.open_drop(phone, dn, ctx, now, fx).await?,
            None => match ctx.drop_id {
                Some(id) => Some(self.drop_detail_by_id(id).await?),
                None => None,
            },
        };
        for (i, p) in photos.iter().enumerate() {
            let media_id = msg.media.get(i).and_then(|m| m.media_id.clone().or_else(|| m.url.clone()));
            let stored = match p {
                Ok(s) => s,
                Err(why) if why.starts_with(DOWNLOAD_FAILED) => {
                    // Visible to the contractor (send it again) and on the drop's timeline.
                    fx.note(format!("media {i}: {why}"));
                    if let Some(d) = drop.as_ref() {
                        self.note_on_drop(d.drop_id, phone.as_str(), "media_failed", why).await?;
                    }
                    self.reply(phone, "media_failed", context! {}, drop.as_ref().map(|d| d.drop_id), None, now, fx).await?;
                    continue;
                }
                Err(why) => {
                    fx.note(format!("media {i} not usable: {why}"));
                    self.reply(phone, "unsupported", context! { kind => "this kind of file" }, None, None, now, fx).await?;
                    continue;
                }
            };
            if !matches!(stored.mime_type.as_str(), "image/jpeg" | "image/png") {
                // Not a checklist photo: kept as an attachment with the active drop.
                let drop_id = drop.as_ref().map(|d| d.drop_id);
                let exists: Option<i64> = on_db!(self, pool => sqlx::query_scalar(
                    "select attachment_id from attachment where sha256 = $1 and phone = $2 and coalesce(drop_id, 0) = coalesce($3, 0)")
                    .bind(&stored.sha256).bind(phone.as_str()).bind(drop_id).fetch_optional(pool).await?);
                if exists.is_none() {
                    let id: i64 = on_db!(self, pool => sqlx::query_scalar(
                        "insert into attachment (drop_id, phone, sha256, mime_type, size_bytes, provider_media_id, received_at)
                         values ($1, $2, $3, $4, $5, $6, $7) returning attachment_id")
                        .bind(drop_id).bind(phone.as_str()).bind(&stored.sha256).bind(&stored.mime_type).bind(stored.size_bytes)
                        .bind(&media_id).bind(now).fetch_one(pool).await?);
                    if let Some(d) = drop.as_ref() {
                        let kb = (stored.size_bytes + 1023) / 1024;
                        self.note_on_drop(
                            d.drop_id,
                            phone.as_str(),
                            "attachment",
                            &format!("file received: {} ({kb} KB), attachment #{id}", stored.mime_type),
                        )
                        .await?;
                    }
                    fx.note(format!("attachment #{id} ({})", stored.mime_type));
                }
                let drop_number = drop.as_ref().map(|d| d.drop_number.clone());
                self.reply(phone, "attachment_received", context! { mime_type => &stored.mime_type, drop_number }, drop_id, None, now, fx)
                    .await?;
                continue;
            }
            let Some(d) = drop.as_ref() else {
                on_db!(self, pool => { sqlx::query(
                    "insert into held_photo (phone, sha256, mime_type, size_bytes, width, height, provider_media_id, step_hint, received_at)
                     values ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
                    .bind(phone.as_str()).bind(&stored.sha256).bind(&stored.mime_type).bind(stored.size_bytes).bind(stored.width)
                    .bind(stored.height).bind(&media_id).bind(caption.step).bind(now).execute(pool).await?; });
                fx.note("photo held until a drop number arrives");
                self.reply(phone, "photo_held", context! {}, None, Some(format!("held:{}", phone.as_str())), now, fx).await?;
                continue;
            };
            if d.steps.iter().flat_map(|s| &s.photos).any(|ph| ph.sha256 == stored.sha256) {
                fx.note(format!("photo already on drop {}", d.drop_number));
                continue;
            }
            let Some(step) = target_step(d, caption.step) else {
                fx.note("no step left for the photo");
                self.reply(
                    phone,
                    "drop_refused",
                    context! { message => format!("Every step of {} has a photo. Caption the photo with its step number (e.g. \"3\") to add it there.", d.drop_number) },
                    Some(d.drop_id),
                    None,
                    now,
                    fx,
                )
                .await?;
                continue;
            };
            let number = DropNumber::parse(&d.drop_number)?;
            let actor = ActorRef::system(phone.as_str());
            let photo = NewPhoto {
                step: StepNo::new(step)?,
                sha256: stored.sha256.clone(),
                mime_type: stored.mime_type.clone(),
                size_bytes: stored.size_bytes,
                width: stored.width,
                height: stored.height,
                provider_media_id: media_id,
                received_at: now,
            };
            self.add_photo(&number, &photo, &actor).await?;
            fx.note(format!("photo on {} step {step}", d.drop_number));
            let fresh = self.complete_if_ready(phone, self.drop_detail(&number).await?, fx).await?;
            self.ack_photos(phone, &fresh, now, fx).await?;
            drop = Some(fresh);
        }
        Ok(())
    }

    /// One acknowledgment per burst: the unsent ack for this drop is re-rendered with every
    /// photo since it was first queued and pushed back by [`ACK_DELAY_MS`] (`reply` merges
    /// replies with the same batch key).
    async fn ack_photos(&self, phone: &Phone, d: &DropDetail, now: i64, fx: &mut Effects) -> CoreResult<()> {
        let key = format!("ack:{}:{}", phone.as_str(), d.drop_id);
        let pending: Option<i64> = on_db!(self, pool => sqlx::query_scalar(
            "select created_at from message where batch_key = $1 and status = 'queued' and attempts = 0 order by message_id desc limit 1")
            .bind(&key).fetch_optional(pool).await?);
        let since = pending.unwrap_or(now);
        let steps: Vec<i64> = d.steps.iter().filter(|s| s.photos.iter().any(|p| p.received_at >= since)).map(|s| s.number).collect();
        let count = d.steps.iter().flat_map(|s| &s.photos).filter(|p| p.received_at >= since).count();
        let (_, _, _, next) = progress(d);
        let vars = context! { drop_number => &d.drop_number, count, steps, next_step => next, with_qa => with_qa(d) };
        // `reply` replaces the pending acknowledgment (same key) with this one.
        self.reply(phone, "photo_ack", vars, Some(d.drop_id), Some(key), now, fx).await
    }

    /// Attaches photos held for this number (received in the last 30 minutes) to the drop.
    async fn attach_held(&self, phone: &Phone, d: &DropDetail, now: i64, fx: &mut Effects) -> CoreResult<usize> {
        #[derive(FromRow)]
        struct Held {
            held_id: i64,
            sha256: String,
            mime_type: String,
            size_bytes: i64,
            width: i64,
            height: i64,
            provider_media_id: Option<String>,
            step_hint: Option<i64>,
            received_at: i64,
        }
        let held: Vec<Held> = on_db!(self, pool => sqlx::query_as::<_, Held>(
            "select held_id, sha256, mime_type, size_bytes, width, height, provider_media_id, step_hint, received_at
             from held_photo where phone = $1 and received_at >= $2 order by received_at, held_id")
            .bind(phone.as_str()).bind(now - CONTEXT_IDLE_MS).fetch_all(pool).await?);
        let number = DropNumber::parse(&d.drop_number)?;
        let actor = ActorRef::system(phone.as_str());
        let mut current = d.clone();
        let mut n = 0;
        for h in held {
            if let Some(step) = target_step(&current, h.step_hint) {
                if !current.steps.iter().flat_map(|s| &s.photos).any(|p| p.sha256 == h.sha256) {
                    let photo = NewPhoto {
                        step: StepNo::new(step)?,
                        sha256: h.sha256,
                        mime_type: h.mime_type,
                        size_bytes: h.size_bytes,
                        width: h.width,
                        height: h.height,
                        provider_media_id: h.provider_media_id,
                        received_at: h.received_at,
                    };
                    self.add_photo(&number, &photo, &actor).await?;
                    n += 1;
                    current = self.drop_detail(&number).await?;
                }
            }
            on_db!(self, pool => { sqlx::query("delete from held_photo where held_id = $1").bind(h.held_id).execute(pool).await?; });
        }
        if n > 0 {
            fx.note(format!("{n} held photo(s) filed on {}", d.drop_number));
        }
        Ok(n)
    }

    // ------------------------------------------------------------ conversation context

    async fn conversation(&self, phone: &str, now: i64) -> CoreResult<Ctx> {
        let row: Option<(Option<i64>, Option<i64>, i64)> = on_db!(self, pool => sqlx::query_as(
            "select project_id, drop_id, updated_at from conversation where phone = $1")
            .bind(phone).fetch_optional(pool).await?);
        Ok(match row {
            Some((project_id, drop_id, at)) if now - at <= CONTEXT_IDLE_MS => Ctx { project_id, drop_id },
            _ => Ctx::default(),
        })
    }

    async fn save_conversation(&self, phone: &str, ctx: &Ctx, now: i64) -> CoreResult<()> {
        on_db!(self, pool => { sqlx::query(
            "insert into conversation (phone, project_id, drop_id, updated_at) values ($1, $2, $3, $4)
             on conflict (phone) do update set project_id = excluded.project_id, drop_id = excluded.drop_id, updated_at = excluded.updated_at")
            .bind(phone).bind(ctx.project_id).bind(ctx.drop_id).bind(now).execute(pool).await?; });
        Ok(())
    }

    async fn set_opt_out(&self, contact_id: i64, out: bool) -> CoreResult<()> {
        on_db!(self, pool => { sqlx::query("update contact set opted_out = $1 where contact_id = $2")
            .bind(out as i64).bind(contact_id).execute(pool).await?; });
        Ok(())
    }

    /// Adds an entry to a drop's history (its timeline) outside any other change.
    async fn note_on_drop(&self, drop_id: i64, actor: &str, kind: &str, detail: &str) -> CoreResult<()> {
        on_db!(self, pool => { sqlx::query(
            "insert into drop_event (drop_id, at, actor, kind, detail) values ($1, $2, $3, $4, $5)")
            .bind(drop_id).bind(crate::now_ms()).bind(actor).bind(kind).bind(detail).execute(pool).await?; });
        on_db!(self, pool => { sqlx::query("update drop_job set activity_at = $1 where drop_id = $2")
            .bind(crate::now_ms()).bind(drop_id).execute(pool).await?; });
        Ok(())
    }

    /// The files kept with a drop, oldest first.
    pub async fn attachments_for_drop(&self, drop_id: i64) -> CoreResult<Vec<AttachmentRow>> {
        Ok(on_db!(self, pool => sqlx::query_as::<_, AttachmentRow>(
            "select attachment_id, drop_id, phone, sha256, mime_type, size_bytes, received_at from attachment where drop_id = $1 order by attachment_id")
            .bind(drop_id).fetch_all(pool).await?))
    }

    pub async fn attachment(&self, attachment_id: i64) -> CoreResult<AttachmentRow> {
        on_db!(self, pool => sqlx::query_as::<_, AttachmentRow>(
            "select attachment_id, drop_id, phone, sha256, mime_type, size_bytes, received_at from attachment where attachment_id = $1")
            .bind(attachment_id).fetch_optional(pool).await?)
        .ok_or_else(|| CoreError::not_found("attachment_not_found", format!("attachment {attachment_id}")))
    }

    /// What changes when any drop changes (the drops list's live view): every change to a
    /// drop moves its `activity_at`, so the latest one (an index lookup) and the number of
    /// drops say enough.
    pub async fn list_fingerprint(&self) -> CoreResult<String> {
        let (at, n): (Option<i64>, Option<i64>) = on_db!(self, pool => sqlx::query_as(
            "select (select max(activity_at) from drop_job), (select cast(sum(n) as bigint) from drop_status_count)")
            .fetch_one(pool).await?);
        Ok(format!("{}:{}", at.unwrap_or(0), n.unwrap_or(0)))
    }

    /// What changes when anything any live page shows changes (a drop's activity or status,
    /// any message's delivery state): the live-update hub reads it once a second for all
    /// open pages together, and only then asks the pages' own fingerprints.
    pub async fn change_fingerprint(&self) -> CoreResult<String> {
        let (at, n, m): (Option<i64>, Option<i64>, Option<i64>) = on_db!(self, pool => sqlx::query_as(
            "select (select max(activity_at) from drop_job), (select cast(sum(n) as bigint) from drop_status_count),
                    (select max(updated_at) from message)")
            .fetch_one(pool).await?);
        Ok(format!("{}:{}:{}", at.unwrap_or(0), n.unwrap_or(0), m.unwrap_or(0)))
    }

    /// What changes when anything on a drop's page changes (status, photos, reviews, message
    /// ticks): the live view polls it and tells open pages to refresh.
    pub async fn drop_fingerprint(&self, number: &DropNumber) -> CoreResult<Option<String>> {
        let row: Option<(String, i64, Option<i64>)> = on_db!(self, pool => sqlx::query_as(
            "select d.status, d.activity_at, (select max(m.updated_at) from message m where m.drop_id = d.drop_id)
             from drop_job d where d.drop_number = $1")
            .bind(number.as_str()).fetch_optional(pool).await?);
        Ok(row.map(|(s, a, m)| format!("{s}:{a}:{}", m.unwrap_or(0))))
    }

    pub async fn drop_detail_by_id(&self, drop_id: i64) -> CoreResult<DropDetail> {
        let number: Option<String> = on_db!(self, pool => sqlx::query_scalar("select drop_number from drop_job where drop_id = $1")
            .bind(drop_id).fetch_optional(pool).await?);
        let number = number.ok_or_else(|| CoreError::not_found("drop_not_found", format!("drop {drop_id}")))?;
        self.drop_detail(&DropNumber::parse(&number)?).await
    }

    // ------------------------------------------------------------ templates and replies

    /// Seeds the built-in templates with their descriptions and sample variables (an
    /// admin's edits are kept).
    pub(crate) async fn seed_templates(&self) -> CoreResult<()> {
        let now = crate::now_ms();
        on_db!(self, pool => {
            for (name, body) in templates::BUILT_IN.iter().chain(templates::NOTIFICATIONS) {
                let (description, sample) = templates::sample(name).unwrap_or(("", "{}"));
                sqlx::query(
                    "insert into message_template (name, body, enabled, description, sample_vars, updated_at) values ($1, $2, 1, $3, $4, $5)
                     on conflict (name) do update set description = coalesce(message_template.description, excluded.description),
                        sample_vars = coalesce(message_template.sample_vars, excluded.sample_vars)")
                    .bind(*name).bind(*body).bind(description).bind(sample).bind(now).execute(pool).await?;
            }
            for (name, old) in templates::SUPERSEDED {
                let (Some(body), Some((_, sample))) = (templates::built_in(name), templates::sample(name)) else { continue };
                sqlx::query("update message_template set body = $1, sample_vars = $2, updated_at = $3 where name = $4 and body = $5")
                    .bind(body).bind(sample).bind(now).bind(*name).bind(*old).execute(pool).await?;
            }
        });
        Ok(())
    }

    /// Renders a stored template (the built-in when the row is missing).
    pub async fn render_template(&self, name: &str, vars: minijinja::Value) -> CoreResult<String> {
        let body: Option<String> = on_db!(self, pool => sqlx::query_scalar("select body from message_template where name = $1")
            .bind(name).fetch_optional(pool).await?);
        let body = match body {
            Some(b) => b,
            None => templates::built_in(name)
                .or_else(|| templates::NOTIFICATIONS.iter().find(|(n, _)| *n == name).map(|(_, b)| *b))
                .ok_or_else(|| CoreError::Internal(format!("no template {name}")))?
                .to_string(),
        };
        templates::render(name, &body, vars)
    }

    /// Names (or, with `None`, removes) the approved provider templates a template is sent as
    /// outside the 24-hour window.
    pub async fn set_provider_template(&self, name: &str, t: Option<&templates::ProviderTemplates>) -> CoreResult<()> {
        let json = match t.filter(|t| !t.is_empty()) {
            Some(t) => Some(serde_json::to_string(t).map_err(|e| CoreError::Internal(e.to_string()))?),
            None => None,
        };
        let n = on_db!(self, pool => sqlx::query("update message_template set provider_template = $1, updated_at = $2 where name = $3")
            .bind(&json).bind(crate::now_ms()).bind(name).execute(pool).await?.rows_affected());
        if n == 0 {
            return Err(CoreError::not_found("template_not_found", format!("template {name}")));
        }
        Ok(())
    }

    /// The feedback message "Mark incomplete" would queue now, rendered from the stored
    /// `drop_feedback` template, with the variables it was rendered from; or why it can't.
    pub async fn feedback_message(&self, drop: &DropDetail, reasons: &[crate::store::Reason]) -> CoreResult<(String, minijinja::Value)> {
        let vars = templates::feedback_vars(drop, reasons)?;
        let body = self.render_template("drop_feedback", vars.clone()).await?;
        Ok((body, vars))
    }

    /// Queues a bot reply, unless the number opted out (STOP/START confirmations always go),
    /// the template is disabled, or the number already got [`REPLIES_PER_MINUTE`] replies in
    /// the last minute. Photo acknowledgments (`batch_key`) wait [`ACK_DELAY_MS`] for the burst.
    #[allow(clippy::too_many_arguments)]
    async fn reply(
        &self,
        phone: &Phone,
        template: &str,
        vars: minijinja::Value,
        drop_id: Option<i64>,
        batch_key: Option<String>,
        now: i64,
        fx: &mut Effects,
    ) -> CoreResult<()> {
        let (opted_out, enabled, recent): (i64, Option<i64>, i64) = on_db!(self, pool => {
            let o: Option<i64> = sqlx::query_scalar("select opted_out from contact where phone = $1").bind(phone.as_str()).fetch_optional(pool).await?;
            let e: Option<i64> = sqlx::query_scalar("select enabled from message_template where name = $1").bind(template).fetch_optional(pool).await?;
            let r: i64 = sqlx::query_scalar(
                "select count(*) from message where phone = $1 and direction = 'out' and template is not null
                   and template <> 'drop_feedback' and created_at > $2")
                .bind(phone.as_str()).bind(now - 60_000).fetch_one(pool).await?;
            (o.unwrap_or(0), e, r)
        });
        if opted_out != 0 && template != "stopped" && template != "started" {
            fx.note(format!("reply {template} not sent: opted out"));
            return Ok(());
        }
        if enabled == Some(0) {
            fx.note(format!("reply {template} not sent: template disabled"));
            return Ok(());
        }
        let body = self.render_template(template, vars.clone()).await?;
        let vars = crate::store::vars_json(&vars)?;
        let due = if batch_key.is_some() { now + ACK_DELAY_MS } else { now };
        if batch_key.is_none() {
            // Any other reply ends the burst: its acknowledgment goes first, now, as it stands.
            on_db!(self, pool => { sqlx::query(
                "update message set batch_key = null, next_attempt_at = $1
                 where phone = $2 and direction = 'out' and batch_key is not null and status = 'queued' and attempts = 0")
                .bind(now - 1).bind(phone.as_str()).execute(pool).await?; });
        }
        if let Some(key) = &batch_key {
            // One reply per burst: an unsent reply with the same key is replaced, not repeated.
            let merged = on_db!(self, pool => sqlx::query(
                "update message set body = $1, template_vars = $2, next_attempt_at = $3, updated_at = $4
                 where batch_key = $5 and status = 'queued' and attempts = 0")
                .bind(&body).bind(&vars).bind(due).bind(now).bind(key).execute(pool).await?.rows_affected());
            if merged > 0 {
                fx.note(format!("reply {template} merged into the pending one"));
                return Ok(());
            }
        }
        if recent >= REPLIES_PER_MINUTE {
            tracing::info!(template, "reply skipped: {REPLIES_PER_MINUTE} replies a minute reached for this number");
            fx.note(format!("reply {template} skipped: {REPLIES_PER_MINUTE} a minute reached"));
            return Ok(());
        }
        on_db!(self, pool => { sqlx::query(
            "insert into message (direction, phone, body, template, template_vars, drop_id, status, attempts, next_attempt_at, batch_key, created_at, updated_at)
             values ('out', $1, $2, $3, $4, $5, 'queued', 0, $6, $7, $8, $8)")
            .bind(phone.as_str()).bind(&body).bind(template).bind(&vars).bind(drop_id).bind(due).bind(&batch_key).bind(now)
            .execute(pool).await?; });
        fx.note(format!("reply {template} queued"));
        Ok(())
    }
}

fn inbound_text(msg: &InboundMessage) -> String {
    match &msg.kind {
        MessageKind::Text => msg.body.clone(),
        MessageKind::Media => {
            // As the provider declared them: JPEG/PNG become checklist photos, the rest files.
            let photos =
                msg.media.iter().filter(|m| m.content_type.starts_with("image/jpeg") || m.content_type.starts_with("image/png")).count();
            let files = msg.media.len() - photos;
            let count = |n: usize, what: &str| match n {
                0 => None,
                1 => Some(format!("1 {what}")),
                n => Some(format!("{n} {what}s")),
            };
            let what = format!("[{}]", [count(photos, "photo"), count(files, "file")].into_iter().flatten().collect::<Vec<_>>().join(", "));
            if msg.body.trim().is_empty() {
                what
            } else {
                format!("{what} {}", msg.body.trim())
            }
        }
        MessageKind::Other(kind) => format!("[{kind}]"),
    }
}

fn step_label(s: &crate::store::StepDetail) -> String {
    format!("{} {}", s.number, s.name)
}

#[derive(Serialize)]
struct NextStep {
    number: i64,
    name: String,
}

/// The drop waits for a reviewer (what the contractor's replies say instead of "send DONE").
fn with_qa(d: &DropDetail) -> bool {
    matches!(d.status, DropStatus::Unreviewed | DropStatus::Resubmitted)
}

/// (steps with a photo, steps, labels of steps without one, the next step to shoot).
fn progress(d: &DropDetail) -> (usize, usize, Vec<String>, Option<NextStep>) {
    let total = d.steps.len();
    let open: Vec<&crate::store::StepDetail> = if d.status == DropStatus::Incomplete {
        d.rejected_steps().filter(|s| !s.photos.iter().any(|p| p.round > d.round)).collect()
    } else {
        d.steps.iter().filter(|s| s.photos.is_empty()).collect()
    };
    let done = d.steps.iter().filter(|s| !s.photos.is_empty()).count();
    let next = open.first().map(|s| NextStep { number: s.number, name: s.name.clone() });
    (done, total, open.iter().map(|s| step_label(s)).collect(), next)
}

/// The step a photo goes to: the captioned one if the drop has it, else the first step still
/// waiting for a photo (on an incomplete drop: the first rejected step without a new photo).
fn target_step(d: &DropDetail, hint: Option<i64>) -> Option<i64> {
    if let Some(h) = hint {
        if d.steps.iter().any(|s| s.number == h) {
            return Some(h);
        }
    }
    if d.status == DropStatus::Incomplete {
        if let Some(s) = d.rejected_steps().find(|s| !s.photos.iter().any(|p| p.round > d.round)) {
            return Some(s.number);
        }
    }
    d.steps.iter().find(|s| s.photos.is_empty() && s.verdict != Verdict::Ok).map(|s| s.number)
}

#[cfg(test)]
mod tests {
    use super::inbound_text;
    use crate::providers::{InboundMessage, MediaRef, MessageKind};

    #[test]
    fn an_inbound_media_message_is_labelled_by_what_it_carries() {
        let media = |types: &[&str]| InboundMessage {
            provider_id: "SM1".into(),
            from: "+27640412391".into(),
            profile_name: String::new(),
            body: String::new(),
            kind: MessageKind::Media,
            media: types.iter().map(|t| MediaRef { url: None, media_id: None, content_type: t.to_string(), sha256: None }).collect(),
        };
        assert_eq!(inbound_text(&media(&["image/jpeg"])), "[1 photo]");
        assert_eq!(inbound_text(&media(&["image/jpeg", "image/png"])), "[2 photos]");
        assert_eq!(inbound_text(&media(&["application/pdf"])), "[1 file]");
        let mut m = media(&["image/jpeg", "application/pdf", "audio/ogg"]);
        m.body = "DR12345678 3".into();
        assert_eq!(inbound_text(&m), "[1 photo, 2 files] DR12345678 3");
    }
}
