//! Storage: one [`Store`] over SQLite (the embedded default) or PostgreSQL.
//!
//! Every query is written once in portable SQL (`$1` placeholders work on both) and run on
//! whichever pool is configured through the [`on_db!`] macro, which expands the same body
//! for each backend. Where the dialects differ the body branches explicitly. Timestamps are
//! unix milliseconds generated in Rust, so no SQL depends on a dialect's clock functions.
//! The storage contract tests in `tests/storage.rs` run every operation on both backends.

use serde::Serialize;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::FromRow;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use crate::conversation::Settings;
use crate::domain::{
    DropNumber, DropStatus, Email, Phone, Role, StepNo, Verdict, DEFAULT_CHECKLIST, DEFAULT_DROP_PATTERN, DEFAULT_REASONS,
};
use crate::error::{CoreError, CoreResult, InputError};
use crate::lifecycle::{self, Action, Actor};
use crate::now_ms;

#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the concrete pool of whichever backend is active.
macro_rules! on_db {
    ($self:expr, $pool:ident => $body:expr) => {
        match &$self.db {
            Db::Sqlite($pool) => $body,
            Db::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_db;

/// A transaction on whichever backend is active. Everything one change does is written
/// through one of these and commits together ([`Tx::commit`]) or not at all (dropped).
pub enum Tx<'c> {
    /// With the process's turn at SQLite's write lock (a savepoint has none of its own).
    Sqlite(sqlx::Transaction<'c, sqlx::Sqlite>, Option<WriteTurn>),
    Postgres(sqlx::Transaction<'c, sqlx::Postgres>),
}

/// This process's turn at SQLite's single write lock, held for a write transaction's life.
/// Write transactions (the webhook ingest writer, the inbox's batches, the sender's outcome
/// recorder, reviews) queue for it in arrival order, in memory, instead of all asking SQLite
/// at once: SQLite lets one wait in its busy handler, which sleeps and retries, so a short
/// commit could wait behind a long batch for longer than the batch itself.
pub struct WriteTurn(#[allow(dead_code)] tokio::sync::OwnedMutexGuard<()>);

/// How long a write transaction waits for its turn before it fails (as SQLite's busy timeout).
/// The turn is released when the transaction commits, rolls back or is dropped.
const WRITE_TURN_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `$body` with `$conn` bound to the transaction's connection (`&mut SqliteConnection`
/// or `&mut PgConnection`); queries in the body run on it with `.execute(&mut *$conn)`.
macro_rules! on_tx {
    ($tx:expr, $conn:ident => $body:expr) => {
        match $tx {
            crate::store::Tx::Sqlite(t, _) => {
                let $conn: &mut sqlx::SqliteConnection = &mut **t;
                $body
            }
            crate::store::Tx::Postgres(t) => {
                let $conn: &mut sqlx::PgConnection = &mut **t;
                $body
            }
        }
    };
}
pub(crate) use on_tx;

impl<'c> Tx<'c> {
    pub async fn commit(self) -> CoreResult<()> {
        match self {
            Tx::Sqlite(t, _turn) => t.commit().await?,
            Tx::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }

    /// Undoes what was written through this transaction (or savepoint).
    pub async fn rollback(self) -> CoreResult<()> {
        match self {
            Tx::Sqlite(t, _turn) => t.rollback().await?,
            Tx::Postgres(t) => t.rollback().await?,
        }
        Ok(())
    }

    /// A savepoint inside this transaction: dropping it undoes what was written through it
    /// (and only that); [`Tx::commit`] keeps it as part of the outer transaction.
    pub async fn savepoint(&mut self) -> CoreResult<Tx<'_>> {
        use sqlx::Connection;
        Ok(match self {
            Tx::Sqlite(t, _) => Tx::Sqlite((**t).begin().await?, None),
            Tx::Postgres(t) => Tx::Postgres((**t).begin().await?),
        })
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Tx::Sqlite(..) => "sqlite",
            Tx::Postgres(_) => "postgresql",
        }
    }
}

/// Binds a list of dynamic arguments (for queries assembled from filters).
macro_rules! bind_args {
    ($q:expr, $args:expr) => {{
        let mut q = $q;
        for a in $args {
            q = match a {
                Arg::I(i) => q.bind(*i),
                Arg::S(s) => q.bind(s.clone()),
            };
        }
        q
    }};
}
pub(crate) use bind_args;

/// Appends a history entry for a drop inside the current transaction.
macro_rules! history {
    ($tx:expr, $drop_id:expr, $actor:expr, $kind:expr, $detail:expr) => {
        sqlx::query("insert into drop_event (drop_id, at, actor, kind, detail) values ($1, $2, $3, $4, $5)")
            .bind($drop_id)
            .bind(now_ms())
            .bind($actor)
            .bind($kind)
            .bind($detail)
            .execute(&mut *$tx)
            .await?
    };
}

/// Refreshes a drop's activity time and its count of steps with a photo, inside a transaction.
macro_rules! recount_photo_steps {
    ($tx:expr, $drop_id:expr) => {
        sqlx::query(
            "update drop_job set activity_at = $1,
                photo_steps = (select count(distinct ph.step_no) from photo ph where ph.drop_id = $2) where drop_id = $2",
        )
        .bind(now_ms())
        .bind($drop_id)
        .execute(&mut *$tx)
        .await?
    };
}

/// Moves a drop to a new status and keeps the badge counters in step, inside a transaction.
macro_rules! set_status {
    ($tx:expr, $drop_id:expr, $from:expr, $to:expr, $ts_col:literal, $now:expr) => {{
        let sql = concat!("update drop_job set status = $1, activity_at = $2, ", $ts_col, " = $2 where drop_id = $3 and status = $4");
        let done = sqlx::query(sql).bind($to.as_str()).bind($now).bind($drop_id).bind($from.as_str()).execute(&mut *$tx).await?;
        if done.rows_affected() != 1 {
            return Err(CoreError::conflict("concurrent_change", "The drop changed while you were working on it; reload and try again."));
        }
        sqlx::query("update drop_status_count set n = n - 1 where status = $1").bind($from.as_str()).execute(&mut *$tx).await?;
        sqlx::query("update drop_status_count set n = n + 1 where status = $1").bind($to.as_str()).execute(&mut *$tx).await?;
    }};
}

pub(crate) enum Arg {
    I(i64),
    S(String),
}

/// Who did something, as recorded in history: a user's e-mail, an API key's name, a contractor.
#[derive(Debug, Clone)]
pub struct ActorRef {
    pub label: String,
    pub kind: Actor,
    pub user_id: Option<i64>,
}

impl ActorRef {
    pub fn user(user: &User) -> Self {
        Self { label: user.email.clone(), kind: Actor::User(user.role()), user_id: Some(user.user_id) }
    }
    pub fn system(label: impl Into<String>) -> Self {
        Self { label: label.into(), kind: Actor::System, user_id: None }
    }
}

#[derive(Debug, Clone, Serialize, FromRow)]
pub struct Project {
    pub project_id: i64,
    pub name: String,
    pub drop_pattern: String,
    pub created_at: i64,
    /// Drops wait for the contractor's `DONE` instead of completing themselves when every
    /// step has a photo.
    pub wait_for_done: bool,
    /// Who created the project: an admin's e-mail, `API key <name>`, or `system`.
    pub created_by: String,
}

pub(crate) const PROJECT_COLS: &str = "select project_id, name, drop_pattern, created_at, wait_for_done, created_by from project";

impl Project {
    /// Checks a drop number against this project's pattern.
    pub fn check_drop_number(&self, n: &DropNumber) -> Result<(), InputError> {
        let re = regex::Regex::new(&self.drop_pattern)
            .map_err(|_| InputError::new("invalid_pattern", format!("project {} has an invalid drop pattern", self.name)))?;
        if re.is_match(n.as_str()) {
            Ok(())
        } else {
            Err(InputError::new(
                "invalid_drop_number",
                format!("{} does not match the drop number pattern of project {} ({})", n, self.name, self.drop_pattern),
            ))
        }
    }
}

#[derive(Debug, Clone, Serialize, FromRow)]
pub struct ChecklistStep {
    pub step_no: i64,
    pub name: String,
    pub description: String,
}

#[derive(Clone, FromRow)]
pub struct User {
    pub user_id: i64,
    pub email: String,
    /// The argon2id PHC string. Never serialised: this type is not `Serialize`.
    pub password_hash: String,
    role: String,
    pub phone: Option<String>,
    pub created_at: i64,
}

/// Debug output leaves the password hash out, so a logged user never leaks it.
impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User").field("user_id", &self.user_id).field("email", &self.email).field("role", &self.role).finish_non_exhaustive()
    }
}

impl User {
    pub fn role(&self) -> Role {
        // The column has a check constraint; anything else is a corrupted row, treated as least privilege.
        Role::parse(&self.role).unwrap_or(Role::Reviewer)
    }
}

/// A drop as listed: enough for one row of the drops table.
#[derive(Debug, Clone, Serialize, FromRow)]
pub struct DropSummary {
    pub drop_id: i64,
    pub drop_number: String,
    pub status: String,
    pub project: String,
    pub contractor_phone: Option<String>,
    pub contractor_name: Option<String>,
    pub round: i64,
    pub created_at: i64,
    pub activity_at: i64,
    pub photo_steps: i64,
    pub step_count: i64,
}

#[derive(Debug, Clone, Default)]
pub struct DropFilter {
    pub status: Option<DropStatus>,
    pub project_id: Option<i64>,
    /// Matches the contractor's phone or name (substring, case-insensitive).
    pub contractor: Option<String>,
    /// Matches the drop number (substring).
    pub q: Option<String>,
    /// Last activity at or after (unix ms).
    pub from_ms: Option<i64>,
    /// Last activity before (unix ms).
    pub to_ms: Option<i64>,
}

/// A keyset position in the drops list (newest activity first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub activity_at: i64,
    pub drop_id: i64,
}

impl Cursor {
    pub fn encode(&self) -> String {
        format!("{}-{}", self.activity_at, self.drop_id)
    }
    pub fn parse(raw: &str) -> Result<Self, InputError> {
        let bad = || InputError::new("invalid_cursor", "the cursor is not one this server handed out");
        let (a, d) = raw.split_once('-').ok_or_else(bad)?;
        Ok(Self { activity_at: a.parse().map_err(|_| bad())?, drop_id: d.parse().map_err(|_| bad())? })
    }
}

#[derive(Debug, Clone, Serialize, FromRow)]
pub struct PhotoInfo {
    pub photo_id: i64,
    pub step_no: i64,
    pub sha256: String,
    pub mime_type: String,
    pub size_bytes: i64,
    pub width: i64,
    pub height: i64,
    pub round: i64,
    pub received_at: i64,
}

#[derive(Debug, Clone, FromRow)]
struct ReviewRow {
    step_no: i64,
    verdict: String,
    reason_code: Option<String>,
    note: String,
    reviewer: Option<String>,
    prev_verdict: Option<String>,
    prev_note: Option<String>,
    updated_at: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepDetail {
    pub number: i64,
    pub name: String,
    pub description: String,
    pub verdict: Verdict,
    pub reason: Option<String>,
    pub reason_label: Option<String>,
    pub note: String,
    pub reviewer: Option<String>,
    pub reviewed_at: Option<i64>,
    /// Set when the step reopened at the last resubmission: what it was before.
    pub previous_verdict: Option<Verdict>,
    pub previous_note: Option<String>,
    /// Newest first.
    pub photos: Vec<PhotoInfo>,
}

#[derive(Debug, Clone, Serialize, FromRow)]
pub struct HistoryEntry {
    pub at: i64,
    pub actor: String,
    pub kind: String,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, FromRow)]
pub struct MessageRow {
    pub message_id: i64,
    pub direction: String,
    pub phone: String,
    pub body: String,
    pub template: Option<String>,
    pub status: String,
    pub provider_message_id: Option<String>,
    pub error_code: Option<String>,
    pub error_text: Option<String>,
    pub attempts: i64,
    pub drop_number: Option<String>,
    /// A picture or document sent with the message (outbound, `POST /send`).
    pub media_url: Option<String>,
    /// How it went out: `text`, `media`, or `template:NAME` (an approved provider template,
    /// outside the 24-hour window).
    pub sent_as: Option<String>,
    /// The caller's reference (notifications API).
    pub reference_id: Option<String>,
    pub created_at: i64,
    /// When a queued message is tried (next): after a failed attempt, the retry time.
    pub next_attempt_at: Option<i64>,
}

#[derive(Debug, Clone, Serialize, FromRow)]
struct DropRow {
    drop_id: i64,
    drop_number: String,
    status: String,
    project_id: i64,
    project: String,
    contractor_phone: Option<String>,
    contractor_name: Option<String>,
    round: i64,
    created_at: i64,
    activity_at: i64,
    unreviewed_at: Option<i64>,
    incomplete_at: Option<i64>,
    resubmitted_at: Option<i64>,
    approved_at: Option<i64>,
    feedback_sent_at: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Contractor {
    pub phone: String,
    pub name: String,
}

/// Everything the drop page and `GET /api/v1/drops/{number}` show.
#[derive(Debug, Clone, Serialize)]
pub struct DropDetail {
    pub drop_id: i64,
    pub drop_number: String,
    pub status: DropStatus,
    pub project_id: i64,
    pub project: String,
    pub contractor: Option<Contractor>,
    pub round: i64,
    pub created_at: i64,
    pub activity_at: i64,
    pub unreviewed_at: Option<i64>,
    pub incomplete_at: Option<i64>,
    pub resubmitted_at: Option<i64>,
    pub approved_at: Option<i64>,
    pub feedback_sent_at: Option<i64>,
    pub steps: Vec<StepDetail>,
    pub history: Vec<HistoryEntry>,
    pub messages: Vec<MessageRow>,
}

impl DropDetail {
    pub fn rejected_steps(&self) -> impl Iterator<Item = &StepDetail> {
        self.steps.iter().filter(|s| s.verdict.is_rejection())
    }
}

#[derive(Debug, Clone, Serialize, FromRow)]
pub struct Reason {
    pub code: String,
    pub label: String,
}

/// One verdict to record on a step.
#[derive(Debug, Clone)]
pub struct StepVerdict {
    pub step: StepNo,
    pub verdict: Verdict,
    pub reason: Option<String>,
    pub note: String,
}

#[derive(Debug, Clone, FromRow)]
pub struct ApiKeyRow {
    pub api_key_id: i64,
    pub name: String,
    pub scopes: String,
    pub revoked_at: Option<i64>,
}

/// An API key as the settings page lists it.
#[derive(Debug, Clone, FromRow)]
pub struct ApiKeyInfo {
    pub api_key_id: i64,
    pub name: String,
    pub prefix: String,
    pub scopes: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// A photo to attach to a drop, already stored in the media directory.
#[derive(Debug, Clone)]
pub struct NewPhoto {
    pub step: StepNo,
    pub sha256: String,
    pub mime_type: String,
    pub size_bytes: i64,
    pub width: i64,
    pub height: i64,
    pub provider_media_id: Option<String>,
    pub received_at: i64,
}

#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) db: Db,
    /// The server's secret key (keyed hashes of verification codes). Set at start-up from
    /// `DROPCHECK_SECRET_KEY` or the data directory; a store without one (tests) makes a
    /// random key for its lifetime.
    secret: std::sync::Arc<std::sync::OnceLock<[u8; 32]>>,
    /// Write transactions' turns at SQLite's write lock (see [`WriteTurn`]); unused on PostgreSQL.
    write_gate: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// How many write transactions wait for their turn (see [`Store::writer_waiting`]).
    gate_waiters: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// The settings the inbox last read, with their version (see [`Store::settings`]).
    pub(crate) settings_cache: std::sync::Arc<std::sync::Mutex<Option<std::sync::Arc<Settings>>>>,
}

/// Where the database lives: an explicit URL, or the SQLite file in the data directory.
/// The project a fresh install starts with.
pub const DEFAULT_PROJECT_NAME: &str = "Default project";

pub fn database_url(explicit: Option<&str>, data_dir: &Path) -> String {
    match explicit {
        Some(url) if !url.trim().is_empty() => url.trim().to_string(),
        _ => format!("sqlite://{}", data_dir.join("dropcheck.db").display()),
    }
}

impl Store {
    /// Connects to `url` (`sqlite:…` or `postgres://…`); SQLite files are created on first use.
    pub async fn connect(url: &str) -> CoreResult<Self> {
        if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url)
                .map_err(|e| InputError::new("invalid_database_url", format!("DATABASE_URL is not a valid sqlite URL: {e}")))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // FULL: a committed webhook or outbox row survives power loss, not just a crash.
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true);
            let pool = SqlitePoolOptions::new().max_connections(8).connect_with(opts).await?;
            Ok(Self {
                db: Db::Sqlite(pool),
                secret: Default::default(),
                write_gate: Default::default(),
                gate_waiters: Default::default(),
                settings_cache: Default::default(),
            })
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let opts = PgConnectOptions::from_str(url)
                .map_err(|e| InputError::new("invalid_database_url", format!("DATABASE_URL is not a valid postgres URL: {e}")))?;
            Self::connect_postgres(opts).await
        } else {
            Err(InputError::new("invalid_database_url", "DATABASE_URL must start with sqlite: or postgres://").into())
        }
    }

    pub async fn connect_postgres(opts: PgConnectOptions) -> CoreResult<Self> {
        let pool = PgPoolOptions::new().max_connections(16).acquire_timeout(Duration::from_secs(10)).connect_with(opts).await?;
        Ok(Self {
            db: Db::Postgres(pool),
            secret: Default::default(),
            write_gate: Default::default(),
            gate_waiters: Default::default(),
            settings_cache: Default::default(),
        })
    }

    /// Sets the secret key (once; later calls are ignored and return false).
    pub fn set_secret_key(&self, key: [u8; 32]) -> bool {
        self.secret.set(key).is_ok()
    }

    pub(crate) fn secret_key(&self) -> [u8; 32] {
        *self.secret.get_or_init(rand::random)
    }

    /// How many group-commit writers suit this database: SQLite writes one transaction at a
    /// time; PostgreSQL overlaps a few (each batch's round trips are then not on the path of
    /// the next).
    pub fn writers(&self) -> usize {
        match self.db {
            Db::Sqlite(_) => 1,
            Db::Postgres(_) => 4,
        }
    }

    pub fn backend(&self) -> &'static str {
        match self.db {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgresql",
        }
    }

    pub async fn close(&self) {
        on_db!(self, pool => pool.close().await)
    }

    /// Applies the migrations of this backend's dialect. A failure stops the caller.
    pub async fn migrate(&self) -> CoreResult<()> {
        let res = match &self.db {
            Db::Sqlite(pool) => sqlx::migrate!("../migrations/sqlite").run(pool).await,
            Db::Postgres(pool) => sqlx::migrate!("../migrations/postgres").run(pool).await,
        };
        res.map_err(|e| CoreError::Internal(format!("migration failed: {e}")))?;
        self.seed_reasons().await?;
        self.seed_templates().await
    }

    /// Starts a write transaction. On SQLite it first waits for this process's turn at the
    /// write lock ([`WriteTurn`]), then takes the lock at once (`BEGIN IMMEDIATE`), so a
    /// transaction that reads before it writes cannot fail half-way because another
    /// connection wrote in between.
    pub async fn begin(&self) -> CoreResult<Tx<'static>> {
        Ok(match &self.db {
            Db::Sqlite(pool) => {
                use std::sync::atomic::Ordering;
                self.gate_waiters.fetch_add(1, Ordering::Relaxed);
                let turn = tokio::time::timeout(WRITE_TURN_TIMEOUT, self.write_gate.clone().lock_owned()).await;
                self.gate_waiters.fetch_sub(1, Ordering::Relaxed);
                let turn = turn.map_err(|_| CoreError::Internal("waited too long for the database's write lock".into()))?;
                Tx::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?, Some(WriteTurn(turn)))
            }
            Db::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        })
    }

    /// Whether another write transaction waits for SQLite's write lock (always false on
    /// PostgreSQL, where writers do not wait for each other's whole transactions). A long
    /// transaction that can be split (the inbox's batches) commits early when one does.
    pub fn writer_waiting(&self) -> bool {
        matches!(self.db, Db::Sqlite(_)) && self.gate_waiters.load(std::sync::atomic::Ordering::Relaxed) > 0
    }

    pub async fn ping(&self) -> CoreResult<()> {
        on_db!(self, pool => { sqlx::query("select 1").execute(pool).await?; });
        Ok(())
    }

    async fn seed_reasons(&self) -> CoreResult<()> {
        on_db!(self, pool => {
            for (i, (code, label)) in DEFAULT_REASONS.iter().enumerate() {
                sqlx::query("insert into review_reason (code, label, position) values ($1, $2, $3) on conflict (code) do nothing")
                    .bind(*code).bind(*label).bind(i as i64).execute(pool).await?;
            }
        });
        Ok(())
    }

    pub async fn reasons(&self) -> CoreResult<Vec<Reason>> {
        Ok(
            on_db!(self, pool => sqlx::query_as::<_, Reason>("select code, label from review_reason order by position, code").fetch_all(pool).await?),
        )
    }

    // ---------------------------------------------------------------- projects

    /// Creates a project with the default 12-step checklist.
    pub async fn create_project(&self, name: &str, drop_pattern: &str) -> CoreResult<Project> {
        self.create_project_by(name, drop_pattern, "").await
    }

    /// Creates a project with the default 12-step checklist, recording who created it (an
    /// admin's e-mail, `API key <name>`, `system`).
    pub async fn create_project_by(&self, name: &str, drop_pattern: &str, created_by: &str) -> CoreResult<Project> {
        let name = name.trim();
        if name.is_empty() || name.len() > 100 {
            return Err(InputError::new("invalid_project_name", "a project name needs 1–100 characters").into());
        }
        regex::Regex::new(drop_pattern)
            .map_err(|e| InputError::new("invalid_pattern", format!("the drop pattern is not a valid regular expression: {e}")))?;
        let now = now_ms();
        {
            let mut tx = self.begin().await?;
            let out = on_tx!(&mut tx, c => {
                let id: Option<i64> = sqlx::query_scalar(
                    "insert into project (name, drop_pattern, created_at, created_by) values ($1, $2, $3, $4) on conflict do nothing returning project_id")
                    .bind(name).bind(drop_pattern).bind(now).bind(created_by).fetch_optional(&mut *c).await?;
                let Some(id) = id else {
                    return Err(CoreError::conflict("project_exists", format!("a project named {name} already exists")));
                };
                for (i, (step, desc)) in DEFAULT_CHECKLIST.iter().enumerate() {
                    sqlx::query("insert into checklist_step (project_id, step_no, name, description) values ($1, $2, $3, $4)")
                        .bind(id).bind(i as i64 + 1).bind(*step).bind(*desc).execute(&mut *c).await?;
                }
                sqlx::query("update project set step_count = $1 where project_id = $2").bind(DEFAULT_CHECKLIST.len() as i64).bind(id).execute(&mut *c).await?;
            });
            tx.commit().await?;
            out
        };
        self.project_by_name(name).await?.ok_or_else(|| CoreError::Internal("project vanished after insert".into()))
    }

    /// A fresh install works at once: when there is no project, one named
    /// [`DEFAULT_PROJECT_NAME`] with the default 12-step checklist and drop pattern is
    /// created (the first admin can rename it at `/setup`). Returns it when it was created.
    pub async fn ensure_default_project(&self) -> CoreResult<Option<Project>> {
        if !self.projects().await?.is_empty() {
            return Ok(None);
        }
        match self.create_project_by(DEFAULT_PROJECT_NAME, DEFAULT_DROP_PATTERN, "system").await {
            Ok(p) => Ok(Some(p)),
            Err(CoreError::Conflict { .. }) => Ok(None), // another replica created it first
            Err(e) => Err(e),
        }
    }

    /// Renames a project (names are unique, case-insensitively as `project_by_name` finds them).
    pub async fn rename_project(&self, project_id: i64, name: &str) -> CoreResult<()> {
        let name = name.trim();
        if name.is_empty() || name.len() > 100 {
            return Err(InputError::new("invalid_project_name", "a project name needs 1–100 characters").into());
        }
        if let Some(other) = self.project_by_name(name).await? {
            if other.project_id != project_id {
                return Err(CoreError::conflict("project_exists", format!("a project named {name} already exists")));
            }
        }
        let n = on_db!(self, pool => sqlx::query("update project set name = $1 where project_id = $2")
            .bind(name).bind(project_id).execute(pool).await?.rows_affected());
        if n == 0 {
            return Err(CoreError::not_found("project_not_found", format!("project {project_id}")));
        }
        Ok(())
    }

    pub async fn projects(&self) -> CoreResult<Vec<Project>> {
        Ok(on_db!(self, pool => sqlx::query_as::<_, Project>(&format!("{PROJECT_COLS} order by name")).fetch_all(pool).await?))
    }

    pub async fn project_by_name(&self, name: &str) -> CoreResult<Option<Project>> {
        Ok(on_db!(self, pool => sqlx::query_as::<_, Project>(
            &format!("{PROJECT_COLS} where lower(name) = lower($1)"))
            .bind(name.trim()).fetch_optional(pool).await?))
    }

    pub async fn project(&self, project_id: i64) -> CoreResult<Project> {
        on_db!(self, pool => sqlx::query_as::<_, Project>(&format!("{PROJECT_COLS} where project_id = $1"))
            .bind(project_id).fetch_optional(pool).await?)
        .ok_or_else(|| CoreError::not_found("project_not_found", format!("project {project_id}")))
    }

    pub async fn checklist(&self, project_id: i64) -> CoreResult<Vec<ChecklistStep>> {
        Ok(on_db!(self, pool => sqlx::query_as::<_, ChecklistStep>(
            "select step_no, name, description from checklist_step where project_id = $1 order by step_no")
            .bind(project_id).fetch_all(pool).await?))
    }

    /// Sets whether the project's drops wait for the contractor's `DONE` (see
    /// [`Project::wait_for_done`]).
    pub async fn set_wait_for_done(&self, project_id: i64, wait: bool) -> CoreResult<()> {
        let n = on_db!(self, pool => sqlx::query("update project set wait_for_done = $1 where project_id = $2")
            .bind(wait).bind(project_id).execute(pool).await?.rows_affected());
        if n == 0 {
            return Err(CoreError::not_found("project_not_found", format!("project {project_id}")));
        }
        Ok(())
    }

    /// Replaces a project's checklist (steps numbered in the order given) and drop pattern.
    pub async fn update_project(&self, project_id: i64, drop_pattern: &str, steps: &[(String, String)]) -> CoreResult<()> {
        regex::Regex::new(drop_pattern)
            .map_err(|e| InputError::new("invalid_pattern", format!("the drop pattern is not a valid regular expression: {e}")))?;
        if steps.is_empty() || steps.len() as i64 > StepNo::MAX {
            return Err(InputError::new("invalid_checklist", format!("a checklist needs 1–{} steps", StepNo::MAX)).into());
        }
        if let Some(i) = steps.iter().position(|(n, _)| n.trim().is_empty()) {
            return Err(InputError::new("invalid_checklist", format!("step {} needs a name", i + 1)).into());
        }
        {
            let mut tx = self.begin().await?;
            let out = on_tx!(&mut tx, c => {
                let n = sqlx::query("update project set drop_pattern = $1 where project_id = $2")
                    .bind(drop_pattern).bind(project_id).execute(&mut *c).await?;
                if n.rows_affected() == 0 {
                    return Err(CoreError::not_found("project_not_found", format!("project {project_id}")));
                }
                sqlx::query("delete from checklist_step where project_id = $1").bind(project_id).execute(&mut *c).await?;
                for (i, (name, desc)) in steps.iter().enumerate() {
                    sqlx::query("insert into checklist_step (project_id, step_no, name, description) values ($1, $2, $3, $4)")
                        .bind(project_id).bind(i as i64 + 1).bind(name.trim()).bind(desc.trim()).execute(&mut *c).await?;
                }
                sqlx::query("update project set step_count = $1 where project_id = $2").bind(steps.len() as i64).bind(project_id).execute(&mut *c).await?;
            });
            tx.commit().await?;
            out
        };
        Ok(())
    }

    // ---------------------------------------------------------------- contacts

    /// Finds or creates the contact for a phone number; a non-empty `name` fills an empty one.
    pub async fn upsert_contact(&self, phone: &Phone, name: &str) -> CoreResult<i64> {
        let mut tx = self.begin().await?;
        let (id, _) = tx.upsert_contact(phone, name, now_ms()).await?;
        tx.commit().await?;
        Ok(id)
    }

    // ---------------------------------------------------------------- drops

    /// Creates a drop (or reports that it exists). Returns the drop and whether it was created.
    pub async fn create_drop(
        &self,
        project: &Project,
        number: &DropNumber,
        contractor: Option<&Phone>,
        status: DropStatus,
        actor: &ActorRef,
    ) -> CoreResult<(DropSummary, bool)> {
        project.check_drop_number(number)?;
        let mut tx = self.begin().await?;
        let contact_id = match contractor {
            Some(p) => Some(tx.upsert_contact(p, "", now_ms()).await?.0),
            None => None,
        };
        let created = tx.create_drop(project, number, contact_id, status, actor, now_ms()).await?;
        tx.commit().await?;
        let summary = self.drop_summary(number).await?;
        Ok((summary, created))
    }

    pub async fn drop_summary(&self, number: &DropNumber) -> CoreResult<DropSummary> {
        let sql = format!("{} where d.drop_number = $1", SUMMARY_SELECT);
        on_db!(self, pool => sqlx::query_as::<_, DropSummary>(&sql).bind(number.as_str()).fetch_optional(pool).await?)
            .ok_or_else(|| CoreError::not_found("drop_not_found", format!("drop {number}")))
    }

    /// A page of drops, newest activity first, after `cursor`. Returns the next cursor if more remain.
    pub async fn list_drops(
        &self,
        filter: &DropFilter,
        cursor: Option<Cursor>,
        limit: i64,
    ) -> CoreResult<(Vec<DropSummary>, Option<Cursor>)> {
        let limit = limit.clamp(1, 200);
        check_search("contractor", filter.contractor.as_deref())?;
        check_search("q", filter.q.as_deref())?;
        let mut conds: Vec<String> = vec![];
        let mut args: Vec<Arg> = vec![];
        let p = |args: &mut Vec<Arg>, a: Arg| {
            args.push(a);
            format!("${}", args.len())
        };
        if let Some(s) = filter.status {
            let ph = p(&mut args, Arg::S(s.as_str().into()));
            conds.push(format!("d.status = {ph}"));
        }
        if let Some(pid) = filter.project_id {
            let ph = p(&mut args, Arg::I(pid));
            conds.push(format!("d.project_id = {ph}"));
        }
        if let Some(c) = filter.contractor.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
            let ph = p(&mut args, Arg::S(format!("%{}%", escape_like(&c.to_lowercase()))));
            conds.push(format!("(lower(c.phone) like {ph} escape '\\' or lower(c.name) like {ph} escape '\\')"));
        }
        if let Some(q) = filter.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
            let ph = p(&mut args, Arg::S(format!("%{}%", escape_like(&q.to_uppercase()))));
            conds.push(format!("d.drop_number like {ph} escape '\\'"));
        }
        if let Some(f) = filter.from_ms {
            let ph = p(&mut args, Arg::I(f));
            conds.push(format!("d.activity_at >= {ph}"));
        }
        if let Some(t) = filter.to_ms {
            let ph = p(&mut args, Arg::I(t));
            conds.push(format!("d.activity_at < {ph}"));
        }
        if let Some(c) = cursor {
            let a = p(&mut args, Arg::I(c.activity_at));
            let b = p(&mut args, Arg::I(c.drop_id));
            conds.push(format!("(d.activity_at < {a} or (d.activity_at = {a} and d.drop_id < {b}))"));
        }
        let lim = p(&mut args, Arg::I(limit + 1));
        let where_ = if conds.is_empty() { String::new() } else { format!(" where {}", conds.join(" and ")) };
        let sql = format!("{SUMMARY_SELECT}{where_} order by d.activity_at desc, d.drop_id desc limit {lim}");
        let mut rows = on_db!(self, pool => bind_args!(sqlx::query_as::<_, DropSummary>(&sql), &args).fetch_all(pool).await?);
        let next = if rows.len() as i64 > limit {
            rows.truncate(limit as usize);
            rows.last().map(|r| Cursor { activity_at: r.activity_at, drop_id: r.drop_id })
        } else {
            None
        };
        Ok((rows, next))
    }

    /// Drops per status, from the counters kept by every status change.
    pub async fn status_counts(&self) -> CoreResult<Vec<(DropStatus, i64)>> {
        let rows: Vec<(String, i64)> =
            on_db!(self, pool => sqlx::query_as("select status, n from drop_status_count").fetch_all(pool).await?);
        let mut out = vec![];
        for s in DropStatus::ALL {
            let n = rows.iter().find(|(st, _)| st == s.as_str()).map(|(_, n)| *n).unwrap_or(0);
            out.push((*s, n));
        }
        Ok(out)
    }

    /// The drop waiting longest for review, other than `except`.
    pub async fn next_for_review(&self, except: Option<&str>) -> CoreResult<Option<String>> {
        Ok(on_db!(self, pool => sqlx::query_scalar::<_, String>(
            "select drop_number from drop_job where status in ('unreviewed', 'resubmitted') and drop_number <> $1
             order by activity_at asc, drop_id asc limit 1")
            .bind(except.unwrap_or("")).fetch_optional(pool).await?))
    }

    pub async fn drop_detail_by_id(&self, drop_id: i64) -> CoreResult<DropDetail> {
        let number: Option<String> = on_db!(self, pool => sqlx::query_scalar("select drop_number from drop_job where drop_id = $1")
            .bind(drop_id).fetch_optional(pool).await?);
        let number = number.ok_or_else(|| CoreError::not_found("drop_not_found", format!("drop {drop_id}")))?;
        self.drop_detail(&DropNumber::parse(&number)?).await
    }

    pub async fn drop_detail(&self, number: &DropNumber) -> CoreResult<DropDetail> {
        let d: DropRow = on_db!(self, pool => sqlx::query_as::<_, DropRow>(&format!("{DROP_ROW_SELECT} where d.drop_number = $1"))
            .bind(number.as_str()).fetch_optional(pool).await?)
        .ok_or_else(|| CoreError::not_found("drop_not_found", format!("drop {number}")))?;
        // Six independent reads. On PostgreSQL they run concurrently (each a round trip to
        // the server); SQLite answers in-process, where one connection after another is cheaper.
        let messages_sql = format!("{MESSAGE_SELECT} where m.drop_id = $1 order by m.message_id");
        macro_rules! detail_reads {
            ($pool:expr) => {
                (
                    sqlx::query_as::<_, ChecklistStep>(CHECKLIST_SELECT).bind(d.project_id).fetch_all($pool),
                    sqlx::query_as::<_, ReviewRow>(REVIEWS_SELECT).bind(d.drop_id).fetch_all($pool),
                    sqlx::query_as::<_, PhotoInfo>(PHOTOS_SELECT).bind(d.drop_id).fetch_all($pool),
                    sqlx::query_as::<_, HistoryEntry>(
                        "select at, actor, kind, detail from drop_event where drop_id = $1 order by event_id",
                    )
                    .bind(d.drop_id)
                    .fetch_all($pool),
                    sqlx::query_as::<_, MessageRow>(&messages_sql).bind(d.drop_id).fetch_all($pool),
                    sqlx::query_as::<_, Reason>("select code, label from review_reason").fetch_all($pool),
                )
            };
        }
        let (checklist, reviews, photos, history, messages, reasons) = match &self.db {
            Db::Sqlite(pool) => {
                let (a, b, c, e, f, g) = detail_reads!(pool);
                (a.await?, b.await?, c.await?, e.await?, f.await?, g.await?)
            }
            Db::Postgres(pool) => {
                let (a, b, c, e, f, g) = detail_reads!(pool);
                tokio::try_join!(a, b, c, e, f, g)?
            }
        };
        assemble_detail(d, checklist, reviews, photos, history, messages, &reasons)
    }

    /// Attaches a photo to a step of a drop.
    pub async fn add_photo(&self, number: &DropNumber, photo: &NewPhoto, actor: &ActorRef) -> CoreResult<i64> {
        let mut tx = self.begin().await?;
        let detail = tx.drop_state(DropKey::Number(number)).await?;
        let id = tx.add_photo(&detail, photo, actor).await?;
        tx.commit().await?;
        Ok(id)
    }

    pub async fn photo(&self, photo_id: i64) -> CoreResult<PhotoInfo> {
        on_db!(self, pool => sqlx::query_as::<_, PhotoInfo>(
            "select photo_id, step_no, sha256, mime_type, size_bytes, width, height, round, received_at from photo where photo_id = $1")
            .bind(photo_id).fetch_optional(pool).await?)
        .ok_or_else(|| CoreError::not_found("photo_not_found", format!("photo {photo_id}")))
    }

    /// Moves a photo (of this drop) to another step.
    pub async fn move_photo(&self, number: &DropNumber, photo_id: i64, to: StepNo, actor: &ActorRef) -> CoreResult<()> {
        let detail = self.drop_detail(number).await?;
        if detail.status == DropStatus::Approved {
            return Err(CoreError::conflict("drop_approved", "The drop is approved; re-open it before changing it."));
        }
        let from = detail
            .steps
            .iter()
            .flat_map(|s| s.photos.iter())
            .find(|p| p.photo_id == photo_id)
            .map(|p| p.step_no)
            .ok_or_else(|| CoreError::not_found("photo_not_found", format!("photo {photo_id} of drop {number}")))?;
        if !detail.steps.iter().any(|s| s.number == to.get()) {
            return Err(InputError::new("invalid_step", format!("drop {number} has no step {}", to.get())).into());
        }
        {
            let mut tx = self.begin().await?;
            let out = on_tx!(&mut tx, c => {
                sqlx::query("update photo set step_no = $1 where photo_id = $2").bind(to.get()).bind(photo_id).execute(&mut *c).await?;
                recount_photo_steps!(c, detail.drop_id);
                history!(c, detail.drop_id, &actor.label, "photo_moved", format!("photo moved from step {from} to step {}", to.get()));
            });
            tx.commit().await?;
            out
        };
        Ok(())
    }

    /// Records verdicts on steps. Refused on an approved drop; accepted steps of a resubmitted
    /// drop stay locked unless the verdict is an explicit re-open (`pending`).
    pub async fn set_verdicts(&self, number: &DropNumber, verdicts: &[StepVerdict], actor: &ActorRef) -> CoreResult<()> {
        if verdicts.is_empty() {
            return Ok(());
        }
        let detail = self.drop_detail(number).await?;
        if detail.status == DropStatus::Approved {
            return Err(CoreError::conflict("drop_approved", "The drop is approved; an admin must re-open it before it can be changed."));
        }
        let reasons = self.reasons().await?;
        for v in verdicts {
            if !detail.steps.iter().any(|s| s.number == v.step.get()) {
                return Err(InputError::new("invalid_step", format!("drop {number} has no step {}", v.step.get())).into());
            }
            if let Some(r) = &v.reason {
                if !reasons.iter().any(|x| &x.code == r) {
                    return Err(InputError::new("invalid_reason", format!("'{r}' is not a reason code")).into());
                }
            }
            if v.note.len() > 2000 {
                return Err(InputError::new("invalid_note", "a note can be at most 2000 characters").into());
            }
        }
        let now = now_ms();
        {
            let mut tx = self.begin().await?;
            let out = on_tx!(&mut tx, c => {
                for v in verdicts {
                    let reason = if v.verdict.is_rejection() { v.reason.clone() } else { None };
                    let note = if v.verdict == Verdict::Pending { String::new() } else { v.note.trim().to_string() };
                    sqlx::query(
                        "insert into step_review (drop_id, step_no, verdict, reason_code, note, reviewer_id, updated_at)
                     values ($1, $2, $3, $4, $5, $6, $7)
                     on conflict (drop_id, step_no) do update set verdict = excluded.verdict, reason_code = excluded.reason_code,
                        note = excluded.note, reviewer_id = excluded.reviewer_id, updated_at = excluded.updated_at")
                        .bind(detail.drop_id).bind(v.step.get()).bind(v.verdict.as_str()).bind(&reason).bind(&note)
                        .bind(actor.user_id).bind(now).execute(&mut *c).await?;
                    let mut what = format!("step {} → {}", v.step.get(), v.verdict);
                    if let Some(r) = &reason { what.push_str(&format!(" ({r})")); }
                    if !note.is_empty() { what.push_str(&format!(": {note}")); }
                    history!(c, detail.drop_id, &actor.label, "verdict", what);
                }
                sqlx::query("update drop_job set activity_at = $1 where drop_id = $2").bind(now).bind(detail.drop_id).execute(&mut *c).await?;
            });
            tx.commit().await?;
            out
        };
        Ok(())
    }

    /// collecting → unreviewed.
    pub async fn complete(&self, number: &DropNumber, actor: &ActorRef) -> CoreResult<DropStatus> {
        self.complete_because(number, actor, None).await
    }

    /// collecting → unreviewed, with why in the history entry (e.g. "every step has a photo").
    pub async fn complete_because(&self, number: &DropNumber, actor: &ActorRef, why: Option<&str>) -> CoreResult<DropStatus> {
        let mut tx = self.begin().await?;
        let detail = tx.drop_state(DropKey::Number(number)).await?;
        let to = tx.change_status(&detail, Action::Complete, actor, why).await?;
        tx.commit().await?;
        Ok(to)
    }

    /// Marks a drop incomplete and queues the feedback message in the same transaction.
    /// Returns the queued message text.
    pub async fn mark_incomplete(&self, number: &DropNumber, actor: &ActorRef) -> CoreResult<String> {
        let detail = self.drop_detail(number).await?;
        let to = lifecycle::transition(detail.status, Action::MarkIncomplete, actor.kind)?;
        let reasons = self.reasons().await?;
        let (body, vars) = self.feedback_message(&detail, &reasons).await?;
        let vars = vars_json(&vars)?;
        let phone = detail
            .contractor
            .as_ref()
            .map(|c| c.phone.clone())
            .ok_or_else(|| CoreError::conflict("no_contractor", "This drop has no contractor number to send feedback to."))?;
        let now = now_ms();
        let steps: Vec<String> = detail.rejected_steps().map(|s| s.number.to_string()).collect();
        {
            let mut tx = self.begin().await?;
            let out = on_tx!(&mut tx, c => {
                set_status!(c, detail.drop_id, detail.status, to, "incomplete_at", now);
                sqlx::query(
                    "insert into message (direction, phone, body, template, template_vars, drop_id, status, attempts, next_attempt_at,
                    idempotency_key, created_at, updated_at)
                 values ('out', $1, $2, 'drop_feedback', $3, $4, 'queued', 0, $5, $6, $5, $5)")
                    .bind(&phone).bind(&body).bind(&vars).bind(detail.drop_id).bind(now)
                    // A drop is marked incomplete at most once per round.
                    .bind(format!("review:{}:{}:incomplete", detail.drop_id, detail.round))
                    .execute(&mut *c).await?;
                history!(c, detail.drop_id, &actor.label, "status",
                    format!("{} → Incomplete; feedback queued for steps {}", detail.status.label(), steps.join(", ")));
            });
            tx.commit().await?;
            out
        };
        Ok(body)
    }

    /// Approves a drop. With `accept_pending`, steps still pending become ok first ("Approve all");
    /// steps with a rejection verdict always block approval.
    pub async fn approve(&self, number: &DropNumber, accept_pending: bool, actor: &ActorRef) -> CoreResult<()> {
        let detail = self.drop_detail(number).await?;
        let to = lifecycle::transition(detail.status, Action::Approve, actor.kind)?;
        let rejected: Vec<String> = detail.rejected_steps().map(|s| s.number.to_string()).collect();
        if !rejected.is_empty() {
            return Err(CoreError::conflict(
                "steps_rejected",
                format!(
                    "Steps {} are marked for the contractor to fix; mark the drop incomplete, or accept those steps first.",
                    rejected.join(", ")
                ),
            ));
        }
        let pending: Vec<&StepDetail> = detail.steps.iter().filter(|s| s.verdict == Verdict::Pending).collect();
        if !pending.is_empty() {
            if !accept_pending {
                let list: Vec<String> = pending.iter().map(|s| s.number.to_string()).collect();
                return Err(CoreError::conflict("steps_pending", format!("Steps {} are not reviewed yet.", list.join(", "))));
            }
            let no_photo: Vec<String> = pending.iter().filter(|s| s.photos.is_empty()).map(|s| s.number.to_string()).collect();
            if !no_photo.is_empty() {
                return Err(CoreError::conflict(
                    "steps_without_photo",
                    format!("Steps {} have no photo; mark them missing, or accept them one by one.", no_photo.join(", ")),
                ));
            }
        }
        let now = now_ms();
        {
            let mut tx = self.begin().await?;
            let out = on_tx!(&mut tx, c => {
                for s in &pending {
                    sqlx::query(
                        "insert into step_review (drop_id, step_no, verdict, reason_code, note, reviewer_id, updated_at)
                     values ($1, $2, 'ok', null, '', $3, $4)
                     on conflict (drop_id, step_no) do update set verdict = 'ok', reason_code = null, note = '',
                        reviewer_id = excluded.reviewer_id, updated_at = excluded.updated_at")
                        .bind(detail.drop_id).bind(s.number).bind(actor.user_id).bind(now).execute(&mut *c).await?;
                }
                set_status!(c, detail.drop_id, detail.status, to, "approved_at", now);
                let what = if pending.is_empty() { format!("{} → Approved", detail.status.label()) }
                           else { format!("{} → Approved (accepted {} pending steps)", detail.status.label(), pending.len()) };
                history!(c, detail.drop_id, &actor.label, "status", what);
            });
            tx.commit().await?;
            out
        };
        Ok(())
    }

    /// incomplete → resubmitted: the round goes up, steps not ok reopen (their last verdict is
    /// kept as `previous_*` for side-by-side review), the feedback-sent time clears.
    pub async fn resubmit(&self, number: &DropNumber, actor: &ActorRef) -> CoreResult<()> {
        let mut tx = self.begin().await?;
        let detail = tx.drop_state(DropKey::Number(number)).await?;
        tx.change_status(&detail, Action::Resubmit, actor, None).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Which drop to load.
#[derive(Debug, Clone, Copy)]
pub enum DropKey<'a> {
    Number(&'a DropNumber),
    Id(i64),
}

/// The drop operations a larger change (an inbound message) makes inside its own transaction;
/// the `Store` methods of the same names run each in a transaction of its own.
impl Tx<'_> {
    /// Finds or creates the contact for a phone number (a non-empty `name` fills an empty
    /// one). Returns its id and whether the number opted out.
    pub async fn upsert_contact(&mut self, phone: &Phone, name: &str, now: i64) -> CoreResult<(i64, bool)> {
        let (id, opted_out): (i64, i64) = on_tx!(self, c => sqlx::query_as(
            "insert into contact (phone, name, created_at) values ($1, $2, $3)
             on conflict (phone) do update set name = case when contact.name = '' then excluded.name else contact.name end
             returning contact_id, opted_out")
            .bind(phone.as_str()).bind(name.trim()).bind(now).fetch_one(&mut *c).await?);
        Ok((id, opted_out != 0))
    }

    /// Records that a number wrote to us at `now` (WhatsApp's 24-hour window starts there):
    /// [`Tx::upsert_contact`] that also sets the contact's last inbound time.
    pub async fn note_inbound(&mut self, phone: &Phone, name: &str, now: i64) -> CoreResult<(i64, bool)> {
        let (id, opted_out): (i64, i64) = on_tx!(self, c => sqlx::query_as(
            "insert into contact (phone, name, created_at, last_inbound_at) values ($1, $2, $3, $3)
             on conflict (phone) do update set name = case when contact.name = '' then excluded.name else contact.name end,
                last_inbound_at = excluded.last_inbound_at
             returning contact_id, opted_out")
            .bind(phone.as_str()).bind(name.trim()).bind(now).fetch_one(&mut *c).await?);
        Ok((id, opted_out != 0))
    }

    /// A drop's status, steps, reviews and photos, as a change needs them to decide; its
    /// history and messages are not loaded (left empty).
    pub async fn drop_state(&mut self, key: DropKey<'_>) -> CoreResult<DropDetail> {
        self.drop_state_in(None, key).await
    }

    /// [`Tx::drop_state`] with the checklist and review reasons taken from `settings` (read
    /// once for a batch of inbound events) where they hold them.
    pub(crate) async fn drop_state_in(&mut self, settings: Option<&Settings>, key: DropKey<'_>) -> CoreResult<DropDetail> {
        let d: Option<DropRow> = on_tx!(self, c => match key {
            DropKey::Number(n) => sqlx::query_as::<_, DropRow>(&format!("{DROP_ROW_SELECT} where d.drop_number = $1"))
                .bind(n.as_str()).fetch_optional(&mut *c).await?,
            DropKey::Id(id) => sqlx::query_as::<_, DropRow>(&format!("{DROP_ROW_SELECT} where d.drop_id = $1"))
                .bind(id).fetch_optional(&mut *c).await?,
        });
        let d = d.ok_or_else(|| match key {
            DropKey::Number(n) => CoreError::not_found("drop_not_found", format!("drop {n}")),
            DropKey::Id(id) => CoreError::not_found("drop_not_found", format!("drop {id}")),
        })?;
        let (reviews, photos) = on_tx!(self, c => (
            sqlx::query_as::<_, ReviewRow>(REVIEWS_SELECT).bind(d.drop_id).fetch_all(&mut *c).await?,
            sqlx::query_as::<_, PhotoInfo>(PHOTOS_SELECT).bind(d.drop_id).fetch_all(&mut *c).await?,
        ));
        let checklist = match settings.and_then(|s| s.checklist(d.project_id)) {
            Some(steps) => steps.to_vec(),
            None => on_tx!(self, c => sqlx::query_as::<_, ChecklistStep>(CHECKLIST_SELECT).bind(d.project_id).fetch_all(&mut *c).await?),
        };
        let read;
        let reasons = match settings {
            Some(s) => s.reasons(),
            None => {
                read = on_tx!(self, c => sqlx::query_as::<_, Reason>("select code, label from review_reason").fetch_all(&mut *c).await?);
                &read[..]
            }
        };
        assemble_detail(d, checklist, reviews, photos, vec![], vec![], reasons)
    }

    /// Creates a drop unless one with this number exists. Returns whether it was created.
    pub async fn create_drop(
        &mut self,
        project: &Project,
        number: &DropNumber,
        contact_id: Option<i64>,
        status: DropStatus,
        actor: &ActorRef,
        now: i64,
    ) -> CoreResult<bool> {
        project.check_drop_number(number)?;
        let unreviewed_at = (status == DropStatus::Unreviewed).then_some(now);
        Ok(on_tx!(self, c => {
            let id: Option<i64> = sqlx::query_scalar(
                "insert into drop_job (drop_number, project_id, contractor_id, status, round, created_at, activity_at, unreviewed_at)
                 values ($1, $2, $3, $4, 1, $5, $5, $6) on conflict (drop_number) do nothing returning drop_id")
                .bind(number.as_str()).bind(project.project_id).bind(contact_id).bind(status.as_str()).bind(now).bind(unreviewed_at)
                .fetch_optional(&mut *c).await?;
            if let Some(id) = id {
                sqlx::query("update drop_status_count set n = n + 1 where status = $1").bind(status.as_str()).execute(&mut *c).await?;
                history!(c, id, &actor.label, "created", format!("created as {} in project {}", status.label(), project.name));
                true
            } else {
                false
            }
        }))
    }

    /// Attaches a photo to a step of `detail` (as loaded in this transaction).
    pub async fn add_photo(&mut self, detail: &DropDetail, photo: &NewPhoto, actor: &ActorRef) -> CoreResult<i64> {
        if !detail.steps.iter().any(|s| s.number == photo.step.get()) {
            return Err(InputError::new("invalid_step", format!("drop {} has no step {}", detail.drop_number, photo.step.get())).into());
        }
        // Photos sent while the drop waits for fixes belong to the round the resubmission opens.
        let round = if detail.status == DropStatus::Incomplete { detail.round + 1 } else { detail.round };
        Ok(on_tx!(self, c => {
            let id: i64 = sqlx::query_scalar(
                "insert into photo (drop_id, step_no, sha256, mime_type, size_bytes, width, height, provider_media_id, round, received_at)
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) returning photo_id")
                .bind(detail.drop_id).bind(photo.step.get()).bind(&photo.sha256).bind(&photo.mime_type).bind(photo.size_bytes)
                .bind(photo.width).bind(photo.height).bind(&photo.provider_media_id).bind(round).bind(photo.received_at)
                .fetch_one(&mut *c).await?;
            recount_photo_steps!(c, detail.drop_id);
            history!(c, detail.drop_id, &actor.label, "photo", format!("photo for step {}", photo.step.get()));
            id
        }))
    }

    /// A contractor's or the system's status change: `Complete` (collecting → unreviewed, with
    /// `why` in the history entry) or `Resubmit` (incomplete → resubmitted: the round goes up,
    /// steps not ok reopen with their last verdict kept as `previous_*`, the feedback-sent
    /// time clears). Other actions have their own `Store` methods.
    pub async fn change_status(
        &mut self,
        detail: &DropDetail,
        action: Action,
        actor: &ActorRef,
        why: Option<&str>,
    ) -> CoreResult<DropStatus> {
        let to = lifecycle::transition(detail.status, action, actor.kind)?;
        let now = now_ms();
        let mut what = format!("{} → {}", detail.status.label(), to.label());
        if let Some(why) = why {
            what.push_str(&format!(" ({why})"));
        }
        on_tx!(self, c => match action {
            Action::Complete => {
                set_status!(c, detail.drop_id, detail.status, to, "unreviewed_at", now);
                history!(c, detail.drop_id, &actor.label, "status", what);
            }
            Action::Resubmit => {
                set_status!(c, detail.drop_id, detail.status, to, "resubmitted_at", now);
                sqlx::query("update drop_job set round = round + 1, feedback_sent_at = null where drop_id = $1")
                    .bind(detail.drop_id).execute(&mut *c).await?;
                sqlx::query("update step_review set prev_verdict = null, prev_note = null where drop_id = $1")
                    .bind(detail.drop_id).execute(&mut *c).await?;
                sqlx::query(
                    "update step_review set prev_verdict = verdict, prev_note = note, verdict = 'pending', reason_code = null, note = '',
                        updated_at = $1 where drop_id = $2 and verdict <> 'ok'")
                    .bind(now).bind(detail.drop_id).execute(&mut *c).await?;
                history!(c, detail.drop_id, &actor.label, "status", format!("Incomplete → Resubmitted (round {})", detail.round + 1));
            }
            other => return Err(CoreError::Internal(format!("change_status does not apply {other:?}"))),
        });
        Ok(to)
    }
}

impl Store {
    // ---------------------------------------------------------------- users

    pub async fn user_count(&self) -> CoreResult<i64> {
        Ok(on_db!(self, pool => sqlx::query_scalar::<_, i64>("select count(*) from app_user").fetch_one(pool).await?))
    }

    pub async fn create_user(&self, email: &Email, password_hash: &str, role: Role) -> CoreResult<User> {
        let now = now_ms();
        let id: Option<i64> = on_db!(self, pool => sqlx::query_scalar(
            "insert into app_user (email, password_hash, role, created_at) values ($1, $2, $3, $4) on conflict (email) do nothing returning user_id")
            .bind(email.as_str()).bind(password_hash).bind(role.as_str()).bind(now).fetch_optional(pool).await?);
        let id = id.ok_or_else(|| CoreError::conflict("email_taken", format!("a user with e-mail {} already exists", email.as_str())))?;
        self.user(id).await
    }

    /// Creates the first admin only while there are no users (the `/setup` page); atomic, so two
    /// racing set-ups cannot both succeed.
    pub async fn create_first_admin(&self, email: &Email, password_hash: &str) -> CoreResult<User> {
        let now = now_ms();
        let id: Option<i64> = on_db!(self, pool => sqlx::query_scalar(
            "insert into app_user (email, password_hash, role, created_at)
             select $1, $2, 'admin', $3 where not exists (select 1 from app_user) returning user_id")
            .bind(email.as_str()).bind(password_hash).bind(now).fetch_optional(pool).await?);
        let id = id.ok_or_else(|| CoreError::conflict("setup_done", "Dropcheck is already set up; sign in instead."))?;
        self.user(id).await
    }

    pub async fn user(&self, user_id: i64) -> CoreResult<User> {
        on_db!(self, pool => sqlx::query_as::<_, User>(
            "select user_id, email, password_hash, role, phone, created_at from app_user where user_id = $1")
            .bind(user_id).fetch_optional(pool).await?)
        .ok_or_else(|| CoreError::not_found("user_not_found", format!("user {user_id}")))
    }

    pub async fn user_by_email(&self, email: &Email) -> CoreResult<Option<User>> {
        Ok(on_db!(self, pool => sqlx::query_as::<_, User>(
            "select user_id, email, password_hash, role, phone, created_at from app_user where email = $1")
            .bind(email.as_str()).fetch_optional(pool).await?))
    }

    pub async fn users(&self) -> CoreResult<Vec<User>> {
        Ok(on_db!(self, pool => sqlx::query_as::<_, User>(
            "select user_id, email, password_hash, role, phone, created_at from app_user order by email").fetch_all(pool).await?))
    }

    /// Changes a role; refuses to leave the instance without an admin.
    pub async fn set_role(&self, user_id: i64, role: Role) -> CoreResult<()> {
        {
            let mut tx = self.begin().await?;
            let out = on_tx!(&mut tx, c => {
                let n = sqlx::query("update app_user set role = $1 where user_id = $2").bind(role.as_str()).bind(user_id).execute(&mut *c).await?;
                if n.rows_affected() == 0 {
                    return Err(CoreError::not_found("user_not_found", format!("user {user_id}")));
                }
                let admins: i64 = sqlx::query_scalar("select count(*) from app_user where role = 'admin'").fetch_one(&mut *c).await?;
                if admins == 0 {
                    return Err(CoreError::conflict("last_admin", "At least one admin must remain."));
                }
            });
            tx.commit().await?;
            out
        };
        Ok(())
    }

    pub async fn delete_user(&self, user_id: i64) -> CoreResult<()> {
        {
            let mut tx = self.begin().await?;
            let out = on_tx!(&mut tx, c => {
                let n = sqlx::query("delete from app_user where user_id = $1").bind(user_id).execute(&mut *c).await?;
                if n.rows_affected() == 0 {
                    return Err(CoreError::not_found("user_not_found", format!("user {user_id}")));
                }
                let admins: i64 = sqlx::query_scalar("select count(*) from app_user where role = 'admin'").fetch_one(&mut *c).await?;
                if admins == 0 {
                    return Err(CoreError::conflict("last_admin", "At least one admin must remain."));
                }
            });
            tx.commit().await?;
            out
        };
        Ok(())
    }

    // ---------------------------------------------------------------- login throttling

    /// Claims one sign-in attempt against `key`'s limit (`limit` attempts per `window_ms`)
    /// before the password is checked, atomically: parallel attempts can never pass the
    /// limit. `Ok(None)` when claimed; `Ok(Some(until_ms))` when refused, with the time the
    /// key may try again.
    pub async fn claim_login_attempt(&self, key: &str, limit: i64, window_ms: i64, now: i64) -> CoreResult<Option<i64>> {
        let claimed: Option<i64> = on_db!(self, pool => sqlx::query_scalar(
            "insert into login_throttle (key, failures, window_start, locked_until, lockouts) values ($1, 1, $2, 0, 0)
             on conflict (key) do update set
                 failures = case when login_throttle.window_start <= $3 then 1 else login_throttle.failures + 1 end,
                 window_start = case when login_throttle.window_start <= $3 then $2 else login_throttle.window_start end
             where login_throttle.locked_until <= $2 and (login_throttle.window_start <= $3 or login_throttle.failures < $4)
             returning cast(failures as bigint)")
            .bind(key).bind(now).bind(now - window_ms).bind(limit).fetch_optional(pool).await?);
        if claimed.is_some() {
            return Ok(None);
        }
        let row: Option<(i64, i64)> = on_db!(self, pool => sqlx::query_as("select locked_until, window_start from login_throttle where key = $1")
            .bind(key).fetch_optional(pool).await?);
        Ok(Some(row.map(|(locked, start)| if locked > now { locked } else { start + window_ms }).unwrap_or(now)))
    }

    /// A claimed attempt failed: when it was the last one the limit allows, the key is locked
    /// for `base_ms` doubled for each lockout before it (at most `cap_ms`), and starts afresh.
    pub async fn fail_login_attempt(&self, key: &str, limit: i64, base_ms: i64, cap_ms: i64, now: i64) -> CoreResult<()> {
        on_db!(self, pool => {
            sqlx::query(
                "update login_throttle set
                     locked_until = $3 + (case when $4 * (1 << (case when lockouts > 16 then 16 else lockouts end)) > $5 then $5
                                          else $4 * (1 << (case when lockouts > 16 then 16 else lockouts end)) end),
                     lockouts = lockouts + 1, failures = 0, window_start = $3
                 where key = $1 and failures >= $2")
                .bind(key).bind(limit).bind(now).bind(base_ms).bind(cap_ms).execute(pool).await?;
        });
        Ok(())
    }

    /// Gives a claimed attempt back (it was not a wrong password).
    pub async fn release_login_attempt(&self, key: &str) -> CoreResult<()> {
        on_db!(self, pool => {
            sqlx::query("update login_throttle set failures = failures - 1 where key = $1 and failures > 0").bind(key).execute(pool).await?;
        });
        Ok(())
    }

    /// A successful sign-in clears the key (its failures and its lockout history).
    pub async fn clear_login_throttle(&self, key: &str) -> CoreResult<()> {
        on_db!(self, pool => { sqlx::query("delete from login_throttle where key = $1").bind(key).execute(pool).await?; });
        Ok(())
    }

    // ---------------------------------------------------------------- sessions

    pub async fn session_load(&self, id: &str, now: i64) -> CoreResult<Option<Vec<u8>>> {
        Ok(on_db!(self, pool => sqlx::query_scalar::<_, Vec<u8>>("select data from session where session_id = $1 and expires_at > $2")
            .bind(id).bind(now).fetch_optional(pool).await?))
    }

    /// Inserts a session; false if the id is taken (the caller picks a new id).
    pub async fn session_create(&self, id: &str, data: &[u8], expires_at: i64) -> CoreResult<bool> {
        let n = on_db!(self, pool => sqlx::query("insert into session (session_id, data, expires_at) values ($1, $2, $3) on conflict (session_id) do nothing")
            .bind(id).bind(data).bind(expires_at).execute(pool).await?.rows_affected());
        Ok(n == 1)
    }

    pub async fn session_save(&self, id: &str, data: &[u8], expires_at: i64) -> CoreResult<()> {
        on_db!(self, pool => {
            sqlx::query("insert into session (session_id, data, expires_at) values ($1, $2, $3)
                         on conflict (session_id) do update set data = excluded.data, expires_at = excluded.expires_at")
                .bind(id).bind(data).bind(expires_at).execute(pool).await?;
        });
        Ok(())
    }

    pub async fn session_delete(&self, id: &str) -> CoreResult<()> {
        on_db!(self, pool => { sqlx::query("delete from session where session_id = $1").bind(id).execute(pool).await?; });
        Ok(())
    }

    /// Housekeeping: expired sessions and sign-in throttles idle for a day.
    pub async fn purge_expired(&self, now: i64) -> CoreResult<()> {
        on_db!(self, pool => {
            sqlx::query("delete from session where expires_at <= $1").bind(now).execute(pool).await?;
            sqlx::query("delete from login_throttle where window_start < $1 and locked_until < $2")
                .bind(now - 24 * 3600 * 1000).bind(now).execute(pool).await?;
        });
        Ok(())
    }

    // ---------------------------------------------------------------- API keys

    pub async fn create_api_key(&self, name: &str, prefix: &str, key_hash: &str, scopes: &str) -> CoreResult<i64> {
        Ok(on_db!(self, pool => sqlx::query_scalar::<_, i64>(
            "insert into api_key (name, prefix, key_hash, scopes, created_at) values ($1, $2, $3, $4, $5) returning api_key_id")
            .bind(name).bind(prefix).bind(key_hash).bind(scopes).bind(now_ms()).fetch_one(pool).await?))
    }

    pub async fn api_key_by_hash(&self, key_hash: &str) -> CoreResult<Option<ApiKeyRow>> {
        let row = on_db!(self, pool => sqlx::query_as::<_, ApiKeyRow>(
            "select api_key_id, name, scopes, revoked_at from api_key where key_hash = $1").bind(key_hash).fetch_optional(pool).await?);
        if let Some(r) = &row {
            on_db!(self, pool => { sqlx::query("update api_key set last_used_at = $1 where api_key_id = $2 and (last_used_at is null or last_used_at < $1 - 60000)").bind(now_ms()).bind(r.api_key_id).execute(pool).await?; });
        }
        Ok(row)
    }

    /// Every key, newest first (hashes stay in the database).
    pub async fn api_keys(&self) -> CoreResult<Vec<ApiKeyInfo>> {
        Ok(on_db!(self, pool => sqlx::query_as::<_, ApiKeyInfo>(
            "select api_key_id, name, prefix, scopes, created_at, last_used_at, revoked_at from api_key order by api_key_id desc")
            .fetch_all(pool).await?))
    }

    pub async fn revoke_api_key(&self, api_key_id: i64) -> CoreResult<()> {
        on_db!(self, pool => { sqlx::query("update api_key set revoked_at = $1 where api_key_id = $2 and revoked_at is null").bind(now_ms()).bind(api_key_id).execute(pool).await?; });
        Ok(())
    }

    // ---------------------------------------------------------------- bulk seeding (benchmarks)

    /// Inserts `count` drops quickly (for benchmarks): one transaction per 1 000 rows, counters kept.
    pub async fn seed_bulk_drops(&self, project: &Project, contractor: &Phone, count: i64, start: i64) -> CoreResult<()> {
        let contact_id = self.upsert_contact(contractor, "Bench Contractor").await?;
        let base = now_ms() - count * 1000;
        let mut i = 0;
        while i < count {
            let end = (i + 1000).min(count);
            {
                let mut tx = self.begin().await?;
                let out = on_tx!(&mut tx, c => {
                    for k in i..end {
                        let status = DropStatus::ALL[(k % 5) as usize];
                        sqlx::query("insert into drop_job (drop_number, project_id, contractor_id, status, round, created_at, activity_at)
                                     values ($1, $2, $3, $4, 1, $5, $5) on conflict (drop_number) do nothing")
                            .bind(format!("DR{:08}", start + k)).bind(project.project_id).bind(contact_id).bind(status.as_str()).bind(base + k * 1000)
                            .execute(&mut *c).await?;
                    }
                    sqlx::query("delete from drop_status_count").execute(&mut *c).await?;
                    sqlx::query("insert into drop_status_count (status, n) select status, count(*) from drop_job group by status").execute(&mut *c).await?;
                    for s in DropStatus::ALL {
                        sqlx::query("insert into drop_status_count (status, n) values ($1, 0) on conflict (status) do nothing").bind(s.as_str()).execute(&mut *c).await?;
                    }
                });
                tx.commit().await?;
                out
            };
            i = end;
        }
        Ok(())
    }
}

const SUMMARY_SELECT: &str = "select d.drop_id, d.drop_number, d.status, p.name as project, c.phone as contractor_phone,
        c.name as contractor_name, d.round, d.created_at, d.activity_at,
        d.photo_steps, p.step_count
    from drop_job d join project p on p.project_id = d.project_id
    left join contact c on c.contact_id = d.contractor_id";

pub(crate) const MESSAGE_SELECT: &str = "select m.message_id, m.direction, m.phone, m.body, m.template, m.status, m.provider_message_id,
        m.error_code, m.error_text, m.attempts, d.drop_number, m.media_url, m.sent_as, m.reference_id, m.created_at, m.next_attempt_at
    from message m left join drop_job d on d.drop_id = m.drop_id";

/// A message's template variables as stored with it (JSON), for sends as a provider template.
pub(crate) fn vars_json(vars: &minijinja::Value) -> CoreResult<String> {
    serde_json::to_string(vars).map_err(|e| CoreError::Internal(format!("template variables: {e}")))
}

/// The longest search term a list takes. Longer ones are refused (422) before they reach the
/// database: a LIKE pattern of 50 000 characters is an SQLite error, and no drop number, name
/// or phone number is anywhere near this long.
pub const MAX_SEARCH_CHARS: usize = 200;

pub(crate) fn check_search(name: &str, value: Option<&str>) -> Result<(), InputError> {
    match value {
        Some(v) if v.chars().count() > MAX_SEARCH_CHARS => {
            Err(InputError::new("search_too_long", format!("The search term '{name}' can have at most {MAX_SEARCH_CHARS} characters.")))
        }
        _ => Ok(()),
    }
}

fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

const DROP_ROW_SELECT: &str = "select d.drop_id, d.drop_number, d.status, d.project_id, p.name as project, c.phone as contractor_phone,
        c.name as contractor_name, d.round, d.created_at, d.activity_at, d.unreviewed_at, d.incomplete_at,
        d.resubmitted_at, d.approved_at, d.feedback_sent_at
    from drop_job d join project p on p.project_id = d.project_id
    left join contact c on c.contact_id = d.contractor_id";
const CHECKLIST_SELECT: &str = "select step_no, name, description from checklist_step where project_id = $1 order by step_no";
const REVIEWS_SELECT: &str =
    "select r.step_no, r.verdict, r.reason_code, r.note, u.email as reviewer, r.prev_verdict, r.prev_note, r.updated_at
    from step_review r left join app_user u on u.user_id = r.reviewer_id where r.drop_id = $1";
const PHOTOS_SELECT: &str = "select photo_id, step_no, sha256, mime_type, size_bytes, width, height, round, received_at
    from photo where drop_id = $1 order by received_at desc, photo_id desc";

/// A drop's detail from its rows.
#[allow(clippy::too_many_arguments)]
fn assemble_detail(
    d: DropRow,
    checklist: Vec<ChecklistStep>,
    reviews: Vec<ReviewRow>,
    photos: Vec<PhotoInfo>,
    history: Vec<HistoryEntry>,
    messages: Vec<MessageRow>,
    reasons: &[Reason],
) -> CoreResult<DropDetail> {
    let status = DropStatus::parse(&d.status).map_err(|e| CoreError::Internal(format!("stored status: {e}")))?;
    let steps = checklist
        .into_iter()
        .map(|c| {
            let r = reviews.iter().find(|r| r.step_no == c.step_no);
            let verdict = r.and_then(|r| Verdict::parse(&r.verdict).ok()).unwrap_or(Verdict::Pending);
            let reason = r.and_then(|r| r.reason_code.clone());
            StepDetail {
                number: c.step_no,
                name: c.name,
                description: c.description,
                verdict,
                reason_label: reason.as_ref().and_then(|code| reasons.iter().find(|x| &x.code == code).map(|x| x.label.clone())),
                reason,
                note: r.map(|r| r.note.clone()).unwrap_or_default(),
                reviewer: r.and_then(|r| r.reviewer.clone()),
                reviewed_at: r.map(|r| r.updated_at),
                previous_verdict: r.and_then(|r| r.prev_verdict.as_deref()).and_then(|v| Verdict::parse(v).ok()),
                previous_note: r.and_then(|r| r.prev_note.clone()),
                photos: photos.iter().filter(|p| p.step_no == c.step_no).cloned().collect(),
            }
        })
        .collect();
    Ok(DropDetail {
        drop_id: d.drop_id,
        drop_number: d.drop_number,
        status,
        project_id: d.project_id,
        project: d.project,
        contractor: d.contractor_phone.map(|phone| Contractor { phone, name: d.contractor_name.unwrap_or_default() }),
        round: d.round,
        created_at: d.created_at,
        activity_at: d.activity_at,
        unreviewed_at: d.unreviewed_at,
        incomplete_at: d.incomplete_at,
        resubmitted_at: d.resubmitted_at,
        approved_at: d.approved_at,
        feedback_sent_at: d.feedback_sent_at,
        steps,
        history,
        messages,
    })
}
