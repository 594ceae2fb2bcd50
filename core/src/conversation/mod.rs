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

mod parse;
mod photos;
mod replies;

pub use parse::{find_drop_number, parse_caption, parse_text, Caption, Command};
pub use replies::RecentReplies;

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

/// What the conversation reads of the settings: the message templates, the projects, their
/// checklists and the review reasons. Loaded by [`Store::settings`], which keeps it in memory
/// until the stored settings' version moves (any change to those tables moves it, by
/// trigger); a batch of events reads it once, so an admin's change applies from the next
/// batch on.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    version: i64,
    templates: HashMap<String, (String, bool)>,
    projects: Vec<Project>,
    checklists: HashMap<i64, Vec<ChecklistStep>>,
    reasons: Vec<Reason>,
}

impl Settings {
    /// A template's body and whether it is enabled: the stored one, else the built-in.
    fn template(&self, name: &str) -> CoreResult<(&str, bool)> {
        if let Some((body, enabled)) = self.templates.get(name) {
            return Ok((body, *enabled));
        }
        templates::shipped(name).map(|b| (b, true)).ok_or_else(|| CoreError::Internal(format!("no template {name}")))
    }

    fn project(&self, project_id: i64) -> Option<&Project> {
        self.projects.iter().find(|p| p.project_id == project_id)
    }

    fn project_by_name(&self, name: &str) -> Option<&Project> {
        let name = name.trim().to_lowercase();
        self.projects.iter().find(|p| p.name.to_lowercase() == name)
    }

    /// A project's checklist, if the project was there when these settings were read.
    pub(crate) fn checklist(&self, project_id: i64) -> Option<&[ChecklistStep]> {
        self.checklists.get(&project_id).map(Vec::as_slice)
    }

    pub(crate) fn reasons(&self) -> &[Reason] {
        &self.reasons
    }
}

impl Store {
    /// The settings as [`Tx::handle_message`] uses them, as of `tx`: from memory while the
    /// stored version is the one they were read at, else read (in `tx`) and kept.
    pub async fn settings(&self, tx: &mut Tx<'_>) -> CoreResult<Arc<Settings>> {
        // The version first: what is read after it is at least as new, so a cached copy is
        // never older than the version it is kept under.
        let version: i64 =
            on_tx!(tx, c => sqlx::query_scalar("select version from settings_version where id = 1").fetch_one(&mut *c).await?);
        if let Some(cached) = self.settings_cache.lock().map_err(|_| CoreError::Internal("settings cache poisoned".into()))?.as_ref() {
            if cached.version == version {
                return Ok(cached.clone());
            }
        }
        let fresh = Arc::new(tx.read_settings(version).await?);
        let mut cache = self.settings_cache.lock().map_err(|_| CoreError::Internal("settings cache poisoned".into()))?;
        if cache.as_ref().is_none_or(|c| c.version < version) {
            *cache = Some(fresh.clone());
        }
        Ok(fresh)
    }
}

impl Tx<'_> {
    async fn read_settings(&mut self, version: i64) -> CoreResult<Settings> {
        let (rows, projects, steps, reasons): (Vec<(String, String, i64)>, Vec<Project>, Vec<(i64, i64, String, String)>, Vec<Reason>) = on_tx!(self, c => (
            sqlx::query_as("select name, body, enabled from message_template").fetch_all(&mut *c).await?,
            sqlx::query_as::<_, Project>(&format!("{PROJECT_COLS} order by project_id")).fetch_all(&mut *c).await?,
            sqlx::query_as("select project_id, step_no, name, description from checklist_step order by project_id, step_no")
                .fetch_all(&mut *c).await?,
            sqlx::query_as::<_, Reason>("select code, label from review_reason").fetch_all(&mut *c).await?,
        ));
        let mut checklists: HashMap<i64, Vec<ChecklistStep>> = projects.iter().map(|p| (p.project_id, vec![])).collect();
        for (project_id, step_no, name, description) in steps {
            checklists.entry(project_id).or_default().push(ChecklistStep { step_no, name, description });
        }
        Ok(Settings { version, templates: rows.into_iter().map(|(n, b, e)| (n, (b, e != 0))).collect(), projects, checklists, reasons })
    }

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
        let message_id: Option<i64> = on_tx!(self, c => sqlx::query_scalar(
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

    /// Reads the stored conversations of these numbers, one statement per 500 (a batch of
    /// events reads its numbers' conversations at once).
    pub async fn read_conversations(&mut self, phones: &[&str]) -> CoreResult<Conversations> {
        let mut found = Conversations::default();
        for chunk in phones.chunks(500) {
            let sql = format!(
                "select phone, project_id, drop_id, updated_at, recent_replies, burst_open from conversation where phone in {}",
                crate::inbox::placeholder_rows(1, chunk.len())
            );
            let rows: Vec<StoredConversation> = on_tx!(self, c => {
                let mut q = sqlx::query_as(&sql);
                for p in chunk {
                    q = q.bind(*p);
                }
                q.fetch_all(&mut *c).await?
            });
            for p in chunk {
                found.rows.entry(p.to_string()).or_insert(None);
            }
            for row in rows {
                let (phone, row) = row.into_row();
                found.rows.insert(phone, Some(row));
            }
        }
        Ok(found)
    }

    /// Writes the conversations changed since they were read: one statement per 100.
    pub async fn write_conversations(&mut self, conversations: &Conversations) -> CoreResult<()> {
        let mut changed: Vec<(&str, &ConversationRow)> = conversations
            .dirty
            .iter()
            .filter_map(|p| conversations.rows.get(p).and_then(Option::as_ref).map(|r| (p.as_str(), r)))
            .collect();
        // One order, so two writers never lock the same rows in opposite orders.
        changed.sort_by_key(|(p, _)| *p);
        for chunk in changed.chunks(100) {
            let sql = format!(
                "insert into conversation (phone, project_id, drop_id, updated_at, recent_replies, burst_open) values {}
                 on conflict (phone) do update set project_id = excluded.project_id, drop_id = excluded.drop_id,
                    updated_at = excluded.updated_at, recent_replies = excluded.recent_replies, burst_open = excluded.burst_open",
                crate::inbox::placeholder_rows(chunk.len(), 6)
            );
            on_tx!(self, c => {
                let mut q = sqlx::query(&sql);
                for (phone, r) in chunk {
                    q = q.bind(*phone).bind(r.project_id).bind(r.drop_id).bind(r.updated_at).bind(r.recent_replies.encode()).bind(r.burst_open as i64);
                }
                q.execute(&mut *c).await?;
            });
        }
        Ok(())
    }
}

/// Conversations as a transaction reads and changes them: each number's row read once (or
/// all of a batch's at once, [`Tx::read_conversations`]), changed in memory message by
/// message, and written once before the commit ([`Tx::write_conversations`]). A message
/// rolled back to its savepoint puts its number's entry back ([`Conversations::saved`],
/// [`Conversations::restore`]).
#[derive(Debug, Default, Clone)]
pub struct Conversations {
    /// By number: the row as it stands in this transaction (`None`: no row yet).
    rows: HashMap<String, Option<ConversationRow>>,
    /// Numbers whose row changed since it was read.
    dirty: std::collections::HashSet<String>,
}

/// A number's entry as it was before a message, to put back if the message is rolled back.
pub struct SavedConversation {
    phone: String,
    entry: Option<Option<ConversationRow>>,
    dirty: bool,
}

#[derive(Debug, Clone)]
struct ConversationRow {
    project_id: Option<i64>,
    drop_id: Option<i64>,
    updated_at: i64,
    recent_replies: RecentReplies,
    burst_open: bool,
}

#[derive(sqlx::FromRow)]
struct StoredConversation {
    phone: String,
    project_id: Option<i64>,
    drop_id: Option<i64>,
    updated_at: i64,
    recent_replies: String,
    burst_open: i64,
}

impl StoredConversation {
    fn into_row(self) -> (String, ConversationRow) {
        let row = ConversationRow {
            project_id: self.project_id,
            drop_id: self.drop_id,
            updated_at: self.updated_at,
            recent_replies: RecentReplies::parse(&self.recent_replies),
            burst_open: self.burst_open != 0,
        };
        (self.phone, row)
    }
}

impl Conversations {
    /// The number's context (expired after [`CONTEXT_IDLE_MS`] idle), its reply-limit state
    /// and whether a burst may be open; read in `tx` if this number was not read yet.
    async fn get(&mut self, tx: &mut Tx<'_>, phone: &str, now: i64) -> CoreResult<Conversation> {
        if !self.rows.contains_key(phone) {
            self.extend(tx.read_conversations(&[phone]).await?);
        }
        let Some(Some(row)) = self.rows.get(phone) else {
            // Every reply is queued with the conversation's row: none, no burst.
            return Ok(Conversation { ctx: Ctx::default(), recent_replies: RecentReplies::default(), burst_open: false });
        };
        let ctx =
            if now - row.updated_at <= CONTEXT_IDLE_MS { Ctx { project_id: row.project_id, drop_id: row.drop_id } } else { Ctx::default() };
        Ok(Conversation { ctx, recent_replies: row.recent_replies.clone(), burst_open: row.burst_open })
    }

    /// Whether this number's row was read (or written) here.
    pub fn knows(&self, phone: &str) -> bool {
        self.rows.contains_key(phone)
    }

    /// Adds the entries of numbers read later.
    pub fn extend(&mut self, read: Conversations) {
        self.rows.extend(read.rows);
        self.dirty.extend(read.dirty);
    }

    /// The changes were written (and committed): nothing is left to write.
    pub fn written(&mut self) {
        self.dirty.clear();
    }

    fn set(&mut self, phone: &str, row: ConversationRow) {
        self.rows.insert(phone.to_string(), Some(row));
        self.dirty.insert(phone.to_string());
    }

    /// The number's entry now (before a message that may be rolled back).
    pub fn saved(&self, phone: &str) -> SavedConversation {
        SavedConversation { phone: phone.to_string(), entry: self.rows.get(phone).cloned(), dirty: self.dirty.contains(phone) }
    }

    /// Puts a number's entry back as it was saved (its message was rolled back).
    pub fn restore(&mut self, saved: SavedConversation) {
        match saved.entry {
            Some(entry) => self.rows.insert(saved.phone.clone(), entry),
            None => self.rows.remove(&saved.phone),
        };
        if saved.dirty {
            self.dirty.insert(saved.phone);
        } else {
            self.dirty.remove(&saved.phone);
        }
    }
}

/// What is kept of a number's conversation between its messages.
struct Conversation {
    ctx: Ctx,
    recent_replies: RecentReplies,
    /// A photo acknowledgment may be waiting for the rest of its burst (set when one is
    /// queued, cleared when a reply ends the burst).
    burst_open: bool,
}

/// The active project and drop of a conversation.
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
}

impl Turn<'_, '_> {
    async fn apply(&mut self, msg: &InboundMessage, photos: &[Result<StoredMedia, String>], contact_id: i64) -> CoreResult<()> {
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
                // An opted-out number's drops and DONE still work; `reply` sends it nothing.
                other => self.command(other).await,
            },
        }
    }

    async fn set_opt_out(&mut self, contact_id: i64, out: bool) -> CoreResult<()> {
        on_tx!(self.tx, c => { sqlx::query("update contact set opted_out = $1 where contact_id = $2")
            .bind(out as i64).bind(contact_id).execute(&mut *c).await?; });
        self.opted_out = out;
        Ok(())
    }

    async fn drop_by_id(&mut self, drop_id: i64) -> CoreResult<DropDetail> {
        self.tx.drop_state_in(Some(self.settings), DropKey::Id(drop_id)).await
    }

    async fn active_drop(&mut self) -> CoreResult<Option<DropDetail>> {
        match self.ctx.drop_id {
            Some(id) => Ok(Some(self.drop_by_id(id).await?)),
            None => Ok(None),
        }
    }

    async fn command(&mut self, command: Command) -> CoreResult<()> {
        match command {
            Command::Drop(dn) => {
                if let Some(d) = self.open_drop(&dn).await? {
                    let attached = self.attach_held(&d).await?;
                    let d = if attached > 0 { self.drop_by_id(d.drop_id).await? } else { d };
                    let d = self.complete_if_ready(d).await?;
                    let (done, total, missing, next) = progress(&d);
                    let with_qa = with_qa(&d);
                    let vars =
                        context! { drop_number => &d.drop_number, project => &d.project, done, total, missing, next_step => next, with_qa };
                    self.reply("drop_opened", vars, Some(d.drop_id), None).await?;
                }
            }
            Command::Done(dn) => {
                let d = match dn {
                    Some(dn) => self.open_drop(&dn).await?,
                    None => self.active_drop().await?,
                };
                match d {
                    Some(d) => self.finish_drop(d).await?,
                    None => self.reply("status", context! { drop_number => None::<String> }, None, None).await?,
                }
            }
            Command::Help => self.reply("help", context! {}, None, None).await?,
            Command::Status => {
                let d = self.active_drop().await?;
                let vars = match &d {
                    Some(d) => {
                        let (done, total, missing, _) = progress(d);
                        context! { drop_number => &d.drop_number, project => &d.project, status => d.status.label(), done, total, missing }
                    }
                    None => context! { drop_number => None::<String> },
                };
                self.reply("status", vars, d.as_ref().map(|d| d.drop_id), None).await?;
            }
            Command::Drops => {
                #[derive(Serialize)]
                struct Open {
                    number: String,
                    status: &'static str,
                }
                let rows: Vec<(String, String)> = on_tx!(self.tx, c => sqlx::query_as(
                    "select d.drop_number, d.status from drop_job d join contact c on c.contact_id = d.contractor_id
                     where c.phone = $1 and d.status <> 'approved' order by d.activity_at desc limit 20")
                    .bind(self.phone.as_str()).fetch_all(&mut *c).await?);
                let mut drops = Vec::with_capacity(rows.len());
                for (number, s) in rows {
                    let status = DropStatus::parse(&s).map_err(|e| CoreError::Internal(format!("drop {number}: stored status: {e}")))?;
                    drops.push(Open { number, status: status.label() });
                }
                self.reply("drops", context! { drops }, None, None).await?;
            }
            Command::Project(name) => match self.settings.project_by_name(&name).cloned() {
                Some(p) => {
                    self.ctx.project_id = Some(p.project_id);
                    self.ctx.drop_id = None;
                    self.fx.note(format!("project {}", p.name));
                    self.reply("project_set", context! { project => p.name }, None, None).await?;
                }
                None => {
                    let mut projects: Vec<String> = self.settings.projects.iter().map(|p| p.name.clone()).collect();
                    projects.sort();
                    self.reply("project_unknown", context! { name, projects }, None, None).await?;
                }
            },
            Command::Clear => {
                self.ctx = Ctx::default();
                self.fx.note("context cleared");
                self.reply("cleared", context! {}, None, None).await?;
            }
            Command::Verify(code) => {
                let outcome = self.tx.verify_phone_link(self.secret, &self.phone, &code, None, self.now).await?;
                match outcome {
                    VerifyOutcome::Linked { user_id } | VerifyOutcome::AlreadyLinked { user_id } => {
                        let email: Option<String> = on_tx!(self.tx, c => sqlx::query_scalar("select email from app_user where user_id = $1")
                            .bind(user_id).fetch_optional(&mut *c).await?);
                        let email = email.ok_or_else(|| CoreError::not_found("user_not_found", format!("user {user_id}")))?;
                        self.fx.note(format!("phone linked to user {user_id}"));
                        self.reply("phone_linked", context! { email }, None, None).await?;
                    }
                    refused => {
                        // The code itself is never written to the ledger or the logs.
                        let reason = match refused.into_result() {
                            Err(e) => e.public_message(),
                            Ok(_) => String::new(),
                        };
                        self.fx.note(format!("phone link refused: {reason}"));
                        self.reply("phone_not_linked", context! { reason }, None, None).await?;
                    }
                }
            }
            // `apply` handles STOP/START itself before calling this.
            Command::Stop | Command::Start => {}
            Command::Unknown => {
                self.fx.note("text stored");
                self.reply("hint", context! {}, None, None).await?;
            }
        }
        Ok(())
    }

    /// The drop a contractor names: found, or created (collecting) in the conversation's
    /// project. A number the project's pattern refuses gets a reply saying so.
    async fn open_drop(&mut self, dn: &DropNumber) -> CoreResult<Option<DropDetail>> {
        match self.tx.drop_state_in(Some(self.settings), DropKey::Number(dn)).await {
            Ok(d) => {
                self.ctx.drop_id = Some(d.drop_id);
                self.ctx.project_id = Some(d.project_id);
                self.fx.note(format!("drop {dn} active"));
                return Ok(Some(d));
            }
            Err(CoreError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        // The conversation's project, else the oldest one.
        let project = self.ctx.project_id.and_then(|id| self.settings.project(id)).or_else(|| self.settings.projects.first()).cloned();
        let Some(project) = project else {
            let message = "No project is set up yet; ask your coordinator.";
            self.reply("drop_refused", context! { message }, None, None).await?;
            return Ok(None);
        };
        let (contact_id, _) = self.tx.upsert_contact(&self.phone, "", self.now).await?;
        match self.tx.create_drop(&project, dn, Some(contact_id), DropStatus::Collecting, &self.actor, self.now).await {
            Ok(_) => {
                let d = self.tx.drop_state_in(Some(self.settings), DropKey::Number(dn)).await?;
                self.ctx.drop_id = Some(d.drop_id);
                self.ctx.project_id = Some(d.project_id);
                self.fx.note(format!("drop {dn} created"));
                Ok(Some(d))
            }
            Err(CoreError::Input(e)) => {
                self.fx.note(format!("drop {dn} refused: {}", e.message));
                self.reply("drop_refused", context! { message => e.message }, None, None).await?;
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// `DONE`: a complete collecting drop goes to review; an incomplete drop whose rejected
    /// steps all have new photos is resubmitted; otherwise the reply lists what is missing.
    async fn finish_drop(&mut self, d: DropDetail) -> CoreResult<()> {
        let vars = |missing: Vec<String>| context! { drop_number => &d.drop_number, status => d.status.label(), missing };
        let missing: Vec<String> = match d.status {
            DropStatus::Collecting => d.steps.iter().filter(|s| s.photos.is_empty()).map(step_label).collect(),
            DropStatus::Incomplete => d.rejected_steps().filter(|s| !s.photos.iter().any(|p| p.round > d.round)).map(step_label).collect(),
            _ => vec![],
        };
        let drop_id = Some(d.drop_id);
        match d.status {
            DropStatus::Collecting | DropStatus::Incomplete if !missing.is_empty() => {
                self.fx.note(format!("drop {} not ready", d.drop_number));
                self.reply("drop_not_ready", vars(missing), drop_id, None).await
            }
            DropStatus::Collecting => {
                self.tx.change_status(&d, Action::Complete, &self.actor, None).await?;
                self.fx.note(format!("drop {} submitted", d.drop_number));
                self.reply("drop_submitted", vars(vec![]), drop_id, None).await
            }
            DropStatus::Incomplete => {
                self.tx.change_status(&d, Action::Resubmit, &self.actor, None).await?;
                self.fx.note(format!("drop {} resubmitted", d.drop_number));
                self.reply("drop_resubmitted", vars(vec![]), drop_id, None).await
            }
            // Already with QA (it completed itself when its last photo arrived): DONE is
            // confirmed, not answered "nothing to do".
            DropStatus::Unreviewed => self.reply("drop_submitted", vars(vec![]), drop_id, None).await,
            DropStatus::Resubmitted => self.reply("drop_resubmitted", vars(vec![]), drop_id, None).await,
            _ => self.reply("drop_waiting", vars(vec![]), drop_id, None).await,
        }
    }

    /// A collecting drop whose every step has a photo goes to review by itself (its history
    /// says why), unless its project waits for the contractor's `DONE`. Returns the drop as
    /// it is now.
    async fn complete_if_ready(&mut self, d: DropDetail) -> CoreResult<DropDetail> {
        if d.status != DropStatus::Collecting || d.steps.is_empty() || d.steps.iter().any(|s| s.photos.is_empty()) {
            return Ok(d);
        }
        let wait_for_done = self.settings.project(d.project_id).map(|p| p.wait_for_done);
        if wait_for_done.ok_or_else(|| CoreError::not_found("project_not_found", format!("project {}", d.project_id)))? {
            return Ok(d);
        }
        self.tx.change_status(&d, Action::Complete, &self.actor, Some("every step has a photo")).await?;
        self.fx.note(format!("drop {} complete: every step has a photo", d.drop_number));
        self.drop_by_id(d.drop_id).await
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
