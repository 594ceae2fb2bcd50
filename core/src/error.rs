//! One error type for the core. The web layers map each variant to a status code:
//! `Input` → 422 (400 for malformed requests, decided by the caller), `NotFound` → 404,
//! `Conflict` → 409, `Forbidden` → 403, `Unauthenticated` → 401, `TooMany` → 429,
//! `Db`/`Internal` → an opaque 500 that is logged ([`CoreError::status`]).

use std::fmt;

/// Bad input from outside, with a stable machine-readable code and a human message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    pub code: &'static str,
    pub message: String,
}

impl InputError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for InputError {}

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// 422 (or 400): the input was understood but is not acceptable.
    #[error("{0}")]
    Input(#[from] InputError),
    /// 404: `what` names the missing thing, e.g. "drop DR12345678".
    #[error("{what} not found")]
    NotFound { code: &'static str, what: String },
    /// 409: the action is not allowed in the current state (lifecycle, uniqueness).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// 403: signed in, but not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// 401: not signed in, or the credentials were wrong.
    #[error("{message}")]
    Unauthenticated { code: &'static str, message: String },
    /// 429: too many attempts; try again after `retry_after_secs`.
    #[error("{message}")]
    TooMany { code: &'static str, message: String, retry_after_secs: u64 },
    /// 500: logged with its cause, shown to users as an opaque message.
    #[error("database error")]
    Db(#[from] sqlx::Error),
    /// 500: logged with its cause, shown to users as an opaque message.
    #[error("internal error: {0}")]
    Internal(String),
}

impl CoreError {
    pub fn not_found(code: &'static str, what: impl Into<String>) -> Self {
        Self::NotFound { code, what: what.into() }
    }
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict { code, message: message.into() }
    }
    /// The stable error code sent to API clients.
    pub fn code(&self) -> &'static str {
        match self {
            CoreError::Input(e) => e.code,
            CoreError::NotFound { code, .. }
            | CoreError::Conflict { code, .. }
            | CoreError::Unauthenticated { code, .. }
            | CoreError::TooMany { code, .. } => code,
            CoreError::Forbidden(_) => "forbidden",
            CoreError::Db(_) | CoreError::Internal(_) => "internal_error",
        }
    }
    /// The HTTP status the web layers answer this error with.
    pub fn status(&self) -> u16 {
        match self {
            CoreError::Input(_) => 422,
            CoreError::NotFound { .. } => 404,
            CoreError::Conflict { .. } => 409,
            CoreError::Forbidden(_) => 403,
            CoreError::Unauthenticated { .. } => 401,
            CoreError::TooMany { .. } => 429,
            CoreError::Db(_) | CoreError::Internal(_) => 500,
        }
    }
    /// The message safe to show a user: internal details stay in the logs.
    pub fn public_message(&self) -> String {
        match self {
            CoreError::Db(_) | CoreError::Internal(_) => "Something went wrong on our side; it has been logged.".into(),
            other => other.to_string(),
        }
    }
    /// A failure that the same input will meet again on every retry: bad input, or a database
    /// refusing the data itself (PostgreSQL's data exceptions and integrity violations,
    /// SQLite's constraint, type and size errors), as opposed to a lost connection, a busy
    /// database or a timeout. Retrying such a failure only delays what comes after it.
    pub fn is_deterministic(&self) -> bool {
        match self {
            CoreError::Input(_) => true,
            CoreError::Db(sqlx::Error::Database(e)) => {
                use sqlx::error::ErrorKind;
                if !matches!(e.kind(), ErrorKind::Other) {
                    return true; // unique, foreign key, not-null or check violation
                }
                let code = e.code().unwrap_or_default();
                if code.len() == 5 {
                    // A PostgreSQL SQLSTATE (SQLite's codes have at most 4 digits): class 22 data
                    // exception (22021, 22P05: a NUL in text), class 23 integrity violation.
                    return code.starts_with("22") || code.starts_with("23");
                }
                // SQLite primary result codes: 18 too big, 19 constraint, 20 type mismatch, 25 range.
                code.parse::<i64>().is_ok_and(|n| matches!(n & 0xff, 18 | 19 | 20 | 25))
            }
            CoreError::Db(sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) | sqlx::Error::Encode(_)) => true,
            _ => false,
        }
    }

    pub fn is_internal(&self) -> bool {
        matches!(self, CoreError::Db(_) | CoreError::Internal(_))
    }
}

pub type CoreResult<T> = Result<T, CoreError>;
