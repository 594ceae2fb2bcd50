//! The predecessor notification service's API, same paths and shapes:
//! `/api/notifications/health`, `send-message`, `history`, `statistics`, `templates`,
//! `process-queue`, `resend/{id}`.
//! Every send goes through the outbox and honours the contact's opt-out and muted types.

use crate::api::{self, ApiCaller, ApiResult, IdempotencyKey};
use crate::routes::Routes;
use crate::workers::{self, Messaging};
use app::ssr::AppState;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::routing::{get, post};
use axum::{Extension, Json};
use dropcheck_core::domain::Phone;
use dropcheck_core::now_ms;
use dropcheck_core::outbox::MessageFilter;
use dropcheck_core::store::MessageRow;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

pub fn router(messaging: Arc<Messaging>) -> Routes<AppState> {
    Routes::new()
        .route("/api/notifications/health", get(health))
        .route("/api/notifications/send-message", post(send_message))
        .route("/api/notifications/history", get(history))
        .route("/api/notifications/statistics", get(statistics))
        .route("/api/notifications/templates", get(api::list_templates).post(api::create_template))
        .route("/api/notifications/templates/{name}", get(api::get_template).put(api::update_template))
        .route("/api/notifications/process-queue", post(process_queue))
        .route("/api/notifications/resend/{id}", post(api::resend_message))
        .map(|r| r.layer(Extension(messaging)))
}

async fn health(State(st): State<AppState>) -> ApiResult<Json<Value>> {
    let counts = st.store.outbox_counts().await?;
    Ok(Json(json!({
        "status": "healthy",
        "message": "WhatsApp notification service is running",
        "uptime_seconds": st.settings.started_at.elapsed().as_secs_f64(),
        "provider": st.settings.integrations.active(),
        "queue": { "queued": counts.queued, "sending": counts.sending, "failed": counts.failed },
    })))
}

#[derive(Deserialize)]
struct SendMessage {
    phone: String,
    message_type: String,
    #[serde(default)]
    context: Option<Value>,
    #[serde(default)]
    reference_id: Option<String>,
    #[serde(default)]
    immediate: bool,
}

fn notification_json(m: &MessageRow) -> Value {
    json!({
        "id": m.message_id.to_string(),
        "phone": m.phone,
        "message_type": m.template,
        "status": m.status,
        "message_text": m.body,
        "reference_id": m.reference_id,
        "provider_message_id": m.provider_message_id,
        "error_code": m.error_code,
        "error": m.error_text,
        "attempts": m.attempts,
        "created_at": api::rfc3339(m.created_at),
    })
}

/// `POST /api/notifications/send-message`: renders the message type's template with
/// `context` and queues it; `immediate: true` sends it now and answers with the provider's
/// status (a transient failure leaves it queued for the retries).
async fn send_message(
    State(st): State<AppState>,
    Extension(m): Extension<Arc<Messaging>>,
    caller: ApiCaller,
    idempotency: IdempotencyKey,
    body: Result<Json<SendMessage>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    caller.require("send")?;
    let Json(body) = body?;
    let phone = Phone::parse(&body.phone)?;
    let context = body.context.unwrap_or_else(|| json!({}));
    let key = idempotency.for_caller(&caller);
    let (id, _) =
        st.store.notify(&phone, body.message_type.trim(), &context, body.reference_id.as_deref(), key.as_deref(), now_ms()).await?;
    tracing::info!(message_id = id.get(), message_type = %body.message_type, caller = %caller.name, immediate = body.immediate, "notification queued");
    let row = if body.immediate {
        workers::send_now(&st.store, &m, id).await?
    } else {
        m.wake_outbox.notify_one();
        st.store.message(id).await?
    };
    Ok(Json(notification_json(&row)))
}

#[derive(Deserialize)]
struct HistoryQuery {
    phone: Option<String>,
    status: Option<String>,
    days: Option<i64>,
    cursor: Option<dropcheck_core::ids::MessageId>,
    limit: Option<i64>,
}

/// `GET /api/notifications/history?phone=&status=&days=`: outbound messages, newest first.
async fn history(State(st): State<AppState>, caller: ApiCaller, q: Result<Query<HistoryQuery>, QueryRejection>) -> ApiResult<Json<Value>> {
    caller.require("read")?;
    let Query(q) = q?;
    let filter = MessageFilter::parse(q.phone, Some("out".into()), q.status, None, q.days, now_ms())?;
    let (rows, next) = st.store.list_messages(&filter, q.cursor, q.limit.unwrap_or(50)).await?;
    Ok(Json(json!({
        "success": true,
        "count": rows.len(),
        "messages": rows.iter().map(notification_json).collect::<Vec<_>>(),
        "next_cursor": next,
    })))
}

#[derive(Deserialize)]
struct DaysQuery {
    days: Option<i64>,
}

/// `GET /api/notifications/statistics?days=30`: totals and rates by status and message type.
async fn statistics(State(st): State<AppState>, caller: ApiCaller, q: Result<Query<DaysQuery>, QueryRejection>) -> ApiResult<Json<Value>> {
    caller.require("read")?;
    let Query(q) = q?;
    let s = st.store.statistics(q.days.unwrap_or(30), now_ms()).await?;
    Ok(Json(json!({ "success": true, "statistics": s })))
}

/// `POST /api/notifications/process-queue`: wakes the sender now (it also runs on its own).
async fn process_queue(State(st): State<AppState>, Extension(m): Extension<Arc<Messaging>>, caller: ApiCaller) -> ApiResult<Json<Value>> {
    caller.require("send")?;
    m.wake_outbox.notify_one();
    let counts = st.store.outbox_counts().await?;
    Ok(Json(json!({ "success": true, "message": "the sender is processing the queue", "queued": counts.queued, "failed": counts.failed })))
}
