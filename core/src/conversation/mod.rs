//! A contractor's WhatsApp conversation: what one inbound message does.
//!
//! [`Tx::handle_message`] applies a message inside the caller's transaction: the contact,
//! the message row, the conversation context, photos, attachments and held photos, drop
//! transitions and their history, and the replies queued in the outbox all commit together
//! or not at all. The message row is written first and is unique by the provider's id, so a
//! message already applied (a redelivery, a reprocess from the ledger, a batch retried after
//! a crash) is recognised and changes nothing. Each reply carries an idempotency key made of
//! the message's id and the reply's position, unique in the outbox.
//!
//! Media is downloaded and stored before the transaction starts (`photos`, in the message's
//! media order); nothing here waits for the network.

mod commands;
mod parse;
mod photos;
mod replies;
mod settings;
mod state;

use crate::ids::{ContactId, DropId, MessageId, ProjectId};
pub use parse::{find_drop_number, parse_caption, parse_text, Caption, Command};
pub use replies::RecentReplies;
pub use settings::Settings;
use state::ConversationRow;
pub use state::{Conversations, SavedConversation};

use minijinja::context;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;

use crate::domain::{DropNumber, DropStatus, Phone, Verdict};
use crate::error::{CoreError, CoreResult};
use crate::lifecycle::Action;
use crate::linking::VerifyOutcome;
use crate::media::StoredMedia;
use crate::providers::{InboundMessage, MessageKind};
use crate::store::{on_tx, ActorRef, ChecklistStep, DropDetail, DropKey, Project, Reason, StepDetail, Store, Tx, PROJECT_COLS};
use crate::templates;

/// A conversation's context (active project and drop) expires after 30 minutes idle; photos
/// waiting for a drop number are kept as long.
pub const CONTEXT_IDLE_MS: i64 = 30 * 60 * 1000;
/// No number gets more than this many bot replies a minute (beyond it replies are skipped,
/// never the processing of what the contractor sent).
pub const REPLIES_PER_MINUTE: i64 = 10;
/// How a media item that could not be downloaded after every retry is passed to
/// [`Tx::handle_message`]: `Err` with a message starting with this.
pub const DOWNLOAD_FAILED: &str = "download failed: ";
/// A burst of photos is acknowledged once, this long after its last photo.
pub const ACK_DELAY_MS: i64 = 4_000;

impl Tx<'_> {
    /// What an inbound message does (see the module documentation). Returns what it did, for
    /// the event's result column.
    pub async fn handle_message(
        &mut self,
        settings: &Settings,
        secret: &[u8; 32],
        conversations: &mut Conversations,
        msg: &InboundMessage,
        photos: &[Result<StoredMedia, String>],
        now: i64,
    ) -> CoreResult<String> {
        let phone = match Phone::parse(&msg.from) {
            Ok(p) => p,
            Err(e) => return Ok(format!("sender {} is not a phone number ({}); stored only", msg.from, e.message)),
        };
        let Conversation { ctx, recent_replies, burst_open } = conversations.get(self, phone.as_str(), now).await?;
        // Filed on the active drop's timeline; moved below if the message changes the drop.
        let first_drop = ctx.drop_id;
        let message_id: Option<MessageId> = on_tx!(self, c => sqlx::query_scalar(
            "insert into message (direction, phone, body, template, drop_id, status, provider_message_id, attempts, created_at, updated_at)
             values ('in', $1, $2, null, $3, 'received', $4, 0, $5, $5) on conflict (provider_message_id) do nothing returning message_id")
            .bind(phone.as_str()).bind(inbound_text(msg)).bind(first_drop).bind(&msg.provider_id).bind(now).fetch_optional(&mut *c).await?);
        let Some(message_id) = message_id else {
            // Written in the same transaction as everything the message did: it was applied.
            return Ok(format!("message {} was already applied; nothing done again", msg.provider_id));
        };
        let (contact_id, opted_out) = self.note_inbound(&phone, &msg.profile_name, now).await?;
        let mut turn = Turn {
            tx: self,
            settings,
            secret,
            actor: ActorRef::system(phone.as_str()),
            phone,
            now,
            cause: format!("reply:{}", msg.provider_id),
            replies: 0,
            recent_replies,
            burst_open,
            opted_out,
            ctx,
            fx: Effects::default(),
            vision: conversations.vision,
        };
        turn.apply(msg, photos, contact_id).await?;
        let Turn { phone, ctx, recent_replies, burst_open, fx, .. } = turn;
        conversations.set(
            phone.as_str(),
            ConversationRow { project_id: ctx.project_id, drop_id: ctx.drop_id, updated_at: now, recent_replies, burst_open },
        );
        if ctx.drop_id != first_drop {
            // The drop's timeline shows what the contractor sent about it.
            on_tx!(self, c => { sqlx::query("update message set drop_id = $1 where message_id = $2")
                .bind(ctx.drop_id).bind(message_id).execute(&mut *c).await?; });
        }
        Ok(fx.finish())
    }
}

/// What is kept of a number's conversation between its messages.
pub(crate) struct Conversation {
    ctx: Ctx,
    recent_replies: RecentReplies,
    /// A photo acknowledgment may be waiting for the rest of its burst (set when one is
    /// queued, cleared when a reply ends the burst).
    burst_open: bool,
}

/// The active project and drop of a conversation.
#[derive(Debug, Clone, Default)]
struct Ctx {
    project_id: Option<ProjectId>,
    drop_id: Option<DropId>,
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

/// One inbound message being applied, inside its transaction.
struct Turn<'t, 'c> {
    tx: &'t mut Tx<'c>,
    settings: &'t Settings,
    secret: &'t [u8; 32],
    phone: Phone,
    /// Who the drop history names for what the contractor did.
    actor: ActorRef,
    now: i64,
    /// The idempotency key of this message's replies, without the reply's position.
    cause: String,
    /// Replies queued (or skipped) so far: the next one's position.
    replies: u32,
    /// The number's replies in the last minute (the reply limit).
    recent_replies: RecentReplies,
    /// See [`Conversation::burst_open`].
    burst_open: bool,
    opted_out: bool,
    ctx: Ctx,
    fx: Effects,
    /// Photos filed now get a vision check.
    vision: bool,
}

impl Turn<'_, '_> {
    async fn apply(&mut self, msg: &InboundMessage, photos: &[Result<StoredMedia, String>], contact_id: ContactId) -> CoreResult<()> {
        match &msg.kind {
            MessageKind::Media => self.file_photos(msg, photos).await,
            MessageKind::Other(kind) => {
                self.fx.note(format!("{kind} message stored"));
                self.reply("unsupported", context! { kind }, None, None).await
            }
            MessageKind::Text => match parse_text(&msg.body) {
                Command::Stop => {
                    self.set_opt_out(contact_id, true).await?;
                    self.fx.note("opted out");
                    self.reply("stopped", context! {}, None, None).await
                }
                Command::Start => {
                    self.set_opt_out(contact_id, false).await?;
                    self.fx.note("opted back in");
                    self.reply("started", context! {}, None, None).await
                }
                // Keyword rules (Automations) come after the built-in commands and STOP/START;
                // one that runs answers instead of the hint.
                Command::Unknown => {
                    let drop_number = match self.ctx.drop_id {
                        Some(id) => Some(self.drop_by_id(id).await?.drop_number.to_string()),
                        None => None,
                    };
                    if self.tx.message_inbound(&self.phone, &msg.profile_name, &msg.body, drop_number.as_deref()).await? {
                        self.fx.note("text stored; an automation answered");
                        Ok(())
                    } else {
                        self.command(Command::Unknown).await
                    }
                }
                // An opted-out number's drops and DONE still work; `reply` sends it nothing.
                other => self.command(other).await,
            },
        }
    }

    async fn set_opt_out(&mut self, contact_id: ContactId, out: bool) -> CoreResult<()> {
        // STOP opts out, START opts in; either is recorded with when and how, and is an event
        // (`contact.opted_out`, or `contact.updated` for START) whose rules run here.
        use crate::contacts::ConsentStatus;
        let (status, source) = if out { (ConsentStatus::OptedOut, "WhatsApp STOP") } else { (ConsentStatus::OptedIn, "WhatsApp START") };
        self.tx.set_consent(contact_id.get(), status, source, self.now).await?;
        let changed = ["consent".to_string()];
        self.tx.contact_event(if out { "contact.opted_out" } else { "contact.updated" }, contact_id.get(), &changed, 0, true).await?;
        self.opted_out = out;
        Ok(())
    }

    async fn drop_by_id(&mut self, drop_id: DropId) -> CoreResult<DropDetail> {
        self.tx.drop_state_in(Some(self.settings), DropKey::Id(drop_id)).await
    }

    async fn active_drop(&mut self) -> CoreResult<Option<DropDetail>> {
        match self.ctx.drop_id {
            Some(id) => Ok(Some(self.drop_by_id(id).await?)),
            None => Ok(None),
        }
    }
}

/// What the ledger and the drop's timeline show for an inbound message.
pub(crate) fn inbound_text(msg: &InboundMessage) -> String {
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

fn step_label(s: &StepDetail) -> String {
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
    let open: Vec<&StepDetail> = if d.status == DropStatus::Incomplete {
        d.rejected_steps().filter(|s| !s.photos.iter().any(|p| p.round > d.round)).collect()
    } else {
        d.steps.iter().filter(|s| s.photos.is_empty()).collect()
    };
    let done = d.steps.iter().filter(|s| !s.photos.is_empty()).count();
    let next = open.first().map(|s| NextStep { number: s.number, name: s.name.clone() });
    (done, total, open.iter().map(|s| step_label(s)).collect(), next)
}

/// The step a photo goes to: the captioned one if the drop has it, else the first step still
/// waiting for a photo (on an incomplete drop: the first rejected step without a new photo),
/// else the first step whose photo has an open flag (the retake the acknowledgment asked for).
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
    let waiting = d.steps.iter().find(|s| s.photos.is_empty() && s.verdict != Verdict::Ok);
    let flagged = || d.steps.iter().find(|s| s.photos.first().is_some_and(|p| p.open_flags().next().is_some()));
    waiting.or_else(flagged).map(|s| s.number)
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
