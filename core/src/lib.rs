//! Dropcheck's core: the domain, its storage on SQLite or PostgreSQL, templates and media.
//! No web framework in here; the Leptos app (`app`, ssr) and the axum host (`server`) both
//! build on it. Start with [`domain`] for the vocabulary, [`lifecycle`] for the drop state
//! machine, then [`store`] for everything persisted.

/// Re-exported so callers build template variables with the same version.
pub use minijinja;

pub mod attachments;
pub mod auth;
pub mod automation;
pub mod backup;
pub mod contacts;
pub mod conversation;
pub mod demo;
pub mod domain;
pub mod error;
pub mod evidence;
pub mod ids;
pub mod inbox;
pub mod integrations;
pub mod lifecycle;
pub mod linking;
pub mod live;
pub mod media;
pub mod myoperator;
pub mod notify;
pub mod outbox;
pub mod pdq;
pub mod phash;
pub mod photo_checks;
pub mod providers;
pub mod retention;
pub mod scorecards;
pub mod stats;
pub mod store;
pub mod template_store;
pub mod templates;
pub mod testing;
pub mod vision;
pub mod webhooks;

pub use error::{CoreError, CoreResult, InputError};

/// Now, in unix milliseconds: the one clock every stored timestamp comes from.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// `2026-11-22 14:03` (UTC) for display.
pub fn fmt_time(ms: i64) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]");
    time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_else(|| "—".into())
}

/// Parses `YYYY-MM-DD` into the unix ms of that day's start (UTC).
pub fn parse_day(raw: &str) -> Result<i64, InputError> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    let d = time::Date::parse(raw.trim(), &fmt)
        .map_err(|_| InputError::new("invalid_date", format!("'{}' is not a date (YYYY-MM-DD)", raw.trim())))?;
    Ok(d.midnight().assume_utc().unix_timestamp() * 1000)
}

/// "5 min ago", "3 h ago", "2 d ago".
pub fn ago(ms: i64, now: i64) -> String {
    let s = ((now - ms) / 1000).max(0);
    match s {
        0..=59 => "just now".into(),
        60..=3599 => format!("{} min ago", s / 60),
        3600..=86_399 => format!("{} h ago", s / 3600),
        _ => format!("{} d ago", s / 86_400),
    }
}
