//! The HTTP API: the predecessors' routes with their exact shapes, and the native
//! `/api/v1`. JSON in and out, API keys for authentication, and every error a JSON body
//! `{"error": code, "message": text}` with a fitting status; never a 500 for bad input.

mod automations;
mod caller;
mod campaigns;
mod contacts;
mod drops;
mod error;
mod health;
pub mod linking;
mod messages;
pub mod notifications;
mod stats;
mod templates;
pub mod webhook_endpoints;

pub use caller::{ApiCaller, IdempotencyKey};
pub use error::{ApiError, ApiPath, ApiResult};
pub(crate) use messages::resend_message;
pub(crate) use templates::{create_template, get_template, list_templates, update_template};

use crate::routes::Routes;
use app::ssr::AppState;
use axum::routing::{any, get, post};

pub fn router() -> Routes<AppState> {
    Routes::new()
        .route("/health", get(health::health))
        .route("/db/test", get(health::db_test))
        .route("/api/submit-installation", post(drops::submit_installation))
        .route("/api/resubmit", post(drops::resubmit))
        .route("/api/v1/drops", get(drops::list_drops))
        .route("/api/v1/drops/{number}", get(drops::get_drop))
        .route("/api/v1/drops/{number}/evidence.pdf", get(drops::evidence))
        .route("/api/v1/drops/{number}/review", post(drops::review_drop))
        .route("/api/v1/messages", get(messages::list_messages))
        .route("/api/v1/messages/{id}/resend", post(resend_message))
        .route("/api/v1/templates", get(list_templates).post(create_template))
        .route("/api/v1/templates/{name}", get(get_template).put(update_template))
        .route("/api/v1/automations", get(automations::list).post(automations::create))
        .route("/api/v1/automations/{id}", get(automations::get_one).put(automations::update).delete(automations::delete))
        .route("/api/v1/automations/{id}/dry-run", post(automations::dry_run))
        .route("/api/v1/automations/{id}/runs", get(automations::runs))
        .route("/api/v1/events", post(automations::post_event))
        .route("/api/v1/contacts", get(contacts::list).post(contacts::create))
        .route("/api/v1/contacts/imports/{id}/rejected.csv", get(contacts::rejected_csv))
        .route("/api/v1/contacts/{phone}", get(contacts::get_one).put(contacts::update))
        .route("/api/v1/contact-attributes", get(contacts::list_attributes).post(contacts::save_attribute))
        .route("/api/v1/contact-attributes/{key}", axum::routing::delete(contacts::delete_attribute))
        .route("/api/v1/campaigns", post(campaigns::create).get(campaigns::list))
        .route("/api/v1/stats/contractors", get(stats::contractors))
        .route("/api/v1/campaigns/{id}", get(campaigns::get_one))
        .route("/api/v1/campaigns/{id}/{action}", post(campaigns::act))
        .route("/send", post(messages::send))
        .route("/api/{*rest}", any(error::not_found))
}

/// The largest contacts CSV upload (a 10 MB file and its multipart framing).
pub const IMPORT_BODY_LIMIT: usize = 12 << 20;

/// The routes with larger bodies than the API's limit: the contacts CSV import.
pub fn upload_router() -> Routes<AppState> {
    Routes::new().route("/api/v1/contacts/import", post(contacts::import).layer(axum::extract::DefaultBodyLimit::max(IMPORT_BODY_LIMIT)))
}

/// A list's `format`: `json` (the default, also blank) or `csv` (the whole list, streamed).
pub(crate) fn wants_csv(format: Option<&str>) -> ApiResult<bool> {
    match format.map(str::trim) {
        None | Some("" | "json") => Ok(false),
        Some("csv") => Ok(true),
        Some(other) => Err(ApiError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_format",
            format!("format is json or csv, not '{other}'"),
        )),
    }
}

pub(crate) fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}
