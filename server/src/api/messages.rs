//! Messages over the API: `POST /send`, `GET /api/v1/messages` and
//! `POST /api/v1/messages/{id}/resend`.

use super::*;
use app::ssr::AppState;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use dropcheck_core::domain::Phone;
use dropcheck_core::ids::MessageId;
use dropcheck_core::outbox::Outgoing;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
pub(super) struct SendBody {
    to: String,
    message: String,
    /// A picture or document for the provider to fetch; `message` is its caption.
    #[serde(default)]
    media_url: Option<String>,
}

/// `POST /send`: queues a free-form WhatsApp message through the outbox.
pub(super) async fn send(
    State(st): State<AppState>,
    caller: ApiCaller,
    idempotency: IdempotencyKey,
    body: Result<Json<SendBody>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    caller.require("send")?;
    let Json(body) = body?;
    let to = body.to.trim();
    let phone = Phone::parse(to.strip_prefix("whatsapp:").unwrap_or(to))?;
    let key = idempotency.for_caller(&caller);
    let out = Outgoing {
        phone: &phone,
        body: &body.message,
        template: None,
        vars: None,
        media_url: body.media_url.as_deref(),
        idempotency_key: key.as_deref(),
        notification: false,
        reference_id: None,
    };
    let id = st.store.queue_outbound(&out, dropcheck_core::now_ms()).await?;
    tracing::info!(message_id = id.get(), caller = %caller.name, "message queued through the API");
    Ok(Json(json!({
        "success": true,
        "id": id,
        "message_sid": format!("queued-{id}"),
        "to": format!("whatsapp:{}", phone.as_str()),
        "status": "queued",
    })))
}

#[derive(Deserialize)]
pub(super) struct MessagesQuery {
    phone: Option<String>,
    direction: Option<String>,
    status: Option<String>,
    drop: Option<String>,
    days: Option<i64>,
    cursor: Option<String>,
    limit: Option<i64>,
    /// `json` (the default) or `csv`: every matching message, streamed (no cursor, no limit).
    format: Option<String>,
}

fn message_json(m: &dropcheck_core::store::MessageRow) -> Value {
    json!({
        "id": m.message_id,
        "direction": m.direction,
        "phone": m.phone,
        "body": m.body,
        "template": m.template,
        "status": m.status,
        "provider_message_id": m.provider_message_id,
        "error_code": m.error_code,
        "error_text": m.error_text,
        "attempts": m.attempts,
        "drop_number": m.drop_number,
        "created_at": m.created_at,
    })
}

pub(super) async fn list_messages(
    State(st): State<AppState>,
    caller: ApiCaller,
    q: Result<Query<MessagesQuery>, QueryRejection>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    caller.require("read")?;
    let Query(q) = q?;
    let csv = wants_csv(q.format.as_deref())?;
    let filter = dropcheck_core::outbox::MessageFilter::parse(q.phone, q.direction, q.status, q.drop, q.days, dropcheck_core::now_ms())?;
    if csv {
        return Ok(crate::csv_export::csv_response("messages.csv", crate::csv_export::messages_csv(st.store.clone(), filter).await?));
    }
    let cursor = match q.cursor.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
        Some(c) => Some(
            c.parse::<MessageId>()
                .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "invalid_cursor", "the cursor is not one this server handed out"))?,
        ),
        None => None,
    };
    let (rows, next) = st.store.list_messages(&filter, cursor, q.limit.unwrap_or(50)).await?;
    Ok(Json(json!({
        "messages": rows.iter().map(message_json).collect::<Vec<_>>(),
        "next_cursor": next.map(|n| n.to_string()),
    }))
    .into_response())
}

pub(crate) async fn resend_message(
    State(st): State<AppState>,
    caller: ApiCaller,
    ApiPath(id): ApiPath<MessageId>,
) -> ApiResult<Json<Value>> {
    caller.require("send")?;
    st.store.resend(id, dropcheck_core::now_ms()).await?;
    Ok(Json(json!({ "success": true, "id": id, "status": "queued" })))
}
