//! One error type for the core. The web layers map each variant to a status code:
//! `Input` → 422 (400 for malformed requests, decided by the caller), `NotFound` → 404,
//! `Conflict` → 409, `Forbidden` → 403, `Db`/`Internal` → an opaque 500 that is logged.

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
            CoreError::NotFound { code, .. } | CoreError::Conflict { code, .. } => code,
            CoreError::Forbidden(_) => "forbidden",
            CoreError::Db(_) | CoreError::Internal(_) => "internal_error",
        }
    }
    /// The message safe to show a user: internal details stay in the logs.
    pub fn public_message(&self) -> String {
        match self {
            CoreError::Db(_) | CoreError::Internal(_) => "Something went wrong on our side; it has been logged.".into(),
            other => other.to_string(),
        }
    }
    pub fn is_internal(&self) -> bool {
        matches!(self, CoreError::Db(_) | CoreError::Internal(_))
    }
}

pub type CoreResult<T> = Result<T, CoreError>;
