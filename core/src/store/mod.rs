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
use crate::domain::{DropNumber, DropStatus, Email, Phone, Role, StepNo, Verdict, DEFAULT_CHECKLIST, DEFAULT_DROP_PATTERN};
use crate::error::{CoreError, CoreResult, InputError};
use crate::ids::{ApiKeyId, ContactId, DropId, MessageId, PhotoId, ProjectId, UserId};
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

/// A row type that knows its table and key column, so a stored value that does not decode
/// is reported with the row it is in (see [`Keyed`]).
pub(crate) trait RowKey {
    const TABLE: &'static str;
    const KEY: &'static str;
}

/// Reads a [`RowKey`] row; a column that does not decode is an error naming the column, the
/// table and the row's key (`column "status" of drop_job row drop_id 17`), never a default.
pub(crate) struct Keyed<T>(pub(crate) T);

impl<T> Keyed<T> {
    pub(crate) fn all(rows: Vec<Keyed<T>>) -> Vec<T> {
        rows.into_iter().map(|k| k.0).collect()
    }
}

impl<'r, R, T> FromRow<'r, R> for Keyed<T>
where
    R: sqlx::Row,
    T: FromRow<'r, R> + RowKey,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    &'static str: sqlx::ColumnIndex<R>,
{
    fn from_row(row: &'r R) -> Result<Self, sqlx::Error> {
        T::from_row(row).map(Keyed).map_err(|e| match e {
            sqlx::Error::ColumnDecode { index, source } => {
                let key = match row.try_get::<i64, _>(T::KEY) {
                    Ok(n) => n.to_string(),
                    Err(_) => {
                        row.try_get::<String, _>(T::KEY).map_or_else(|_| "(unreadable)".into(), |s| format!("'{}'", s.escape_debug()))
                    }
                };
                sqlx::Error::ColumnDecode { index: format!("{index} of {} row {} {key}", T::TABLE, T::KEY), source }
            }
            other => other,
        })
    }
}

macro_rules! row_key {
    ($($ty:ty => $table:literal . $key:literal),+ $(,)?) => {$(
        impl crate::store::RowKey for $ty {
            const TABLE: &'static str = $table;
            const KEY: &'static str = $key;
        }
    )+};
}
pub(crate) use row_key;

row_key!(
    MessageRow => "message"."message_id",
    drop_list::DropSummary => "drop_job"."drop_id",
    drops::DropRow => "drop_job"."drop_id",
    drops::PhotoInfo => "photo"."photo_id",
    users::User => "app_user"."user_id",
    projects::Project => "project"."project_id",
);

pub(crate) enum Arg {
    I(i64),
    S(String),
}

/// Who did something, as recorded in history: a user's e-mail, an API key's name, a contractor.
#[derive(Debug, Clone)]
pub struct ActorRef {
    pub label: String,
    pub kind: Actor,
    pub user_id: Option<UserId>,
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
pub struct MessageRow {
    pub message_id: MessageId,
    pub direction: crate::domain::Direction,
    pub phone: Phone,
    pub body: String,
    pub template: Option<String>,
    pub status: String,
    pub provider_message_id: Option<String>,
    pub error_code: Option<String>,
    pub error_text: Option<String>,
    pub attempts: i64,
    pub drop_number: Option<DropNumber>,
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
    /// The settings the inbox last read (see [`Store::settings`]) and the reuse index.
    pub(crate) memory: std::sync::Arc<reuse::Memory>,
}

/// Where the database lives: an explicit URL, or the SQLite file in the data directory.
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
            // A connection is waited for at most 10 s (as on PostgreSQL): a pool that stays
            // exhausted answers an error that is logged, rather than holding requests for 30 s.
            let pool = SqlitePoolOptions::new().max_connections(8).acquire_timeout(Duration::from_secs(10)).connect_with(opts).await?;
            Ok(Self {
                db: Db::Sqlite(pool),
                secret: Default::default(),
                write_gate: Default::default(),
                gate_waiters: Default::default(),
                memory: Default::default(),
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
            memory: Default::default(),
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
        self.seed_templates().await?;
        self.seed_rules().await
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
}

pub(crate) const MESSAGE_SELECT: &str = "select m.message_id, m.direction, m.phone, m.body, m.template, m.status, m.provider_message_id,
        m.error_code, m.error_text, m.attempts, d.drop_number, m.media_url, m.sent_as, m.reference_id, m.created_at, m.next_attempt_at
    from message m left join drop_job d on d.drop_id = m.drop_id";

// The parts of the store, by what they hold (declared after the macros above, which they use).
mod automation;
mod automation_actions;
mod automation_run;
mod automation_sweep;
mod contacts;
mod drop_list;
mod drop_tx;
mod drops;
mod photo_checks;
mod projects;
mod reuse;
mod review;
mod users;
mod vision;
mod webhooks;

pub use automation::{DryRun, RuleRow, RunRow};
pub use automation_run::{ActionOutcome, NewEvent};
pub use contacts::{check_tag, CampaignView, ContactChange, ContactFilter, ImportMapping, ImportMode, ImportReport, TagCause};
pub(crate) use drop_list::check_search;
pub use drop_list::{Cursor, DropFilter, DropQuery, DropSummary, MAX_SEARCH_CHARS};
pub use drop_tx::DropKey;
pub use drops::{Contractor, DropDetail, HistoryEntry, PhotoInfo, StepDetail};
pub use photo_checks::{PhotoCheck, PhotoCheckSettings, ReuseIndex, Similar};
pub(crate) use projects::PROJECT_COLS;
pub use projects::{ChecklistStep, Project, Reason, DEFAULT_PROJECT_NAME};
pub use review::{NewPhoto, StepVerdict};
pub use users::{ApiKeyInfo, ApiKeyRow, User};
pub use vision::{StepVision, VisionJob, VisionOutcome, VisionView};
pub use webhooks::{Attempt, AttemptRow, ClaimedDelivery, DeliveryRow, EndpointRow};
