//! Outbound event webhooks over the API (`admin` scope): endpoints with the event types
//! they want, their secrets (shown once, rotated with a 24-hour overlap), the delivery log
//! with every attempt, and replays with the same `webhook-id`.

use super::*;
use crate::routes::Routes;
use crate::workers::Messaging;
use app::ssr::AppState;
use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Extension, Json};
use dropcheck_core::store::EndpointRow;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

pub fn router(messaging: Arc<Messaging>) -> Routes<AppState> {
    Routes::new()
        .route("/api/v1/webhook-endpoints", get(list).post(create))
        .route("/api/v1/webhook-endpoints/{id}", get(get_one).delete(delete))
        .route("/api/v1/webhook-endpoints/{id}/rotate-secret", post(rotate))
        .route("/api/v1/webhook-endpoints/{id}/deliveries", get(deliveries))
        .route("/api/v1/webhook-endpoints/{id}/replay", post(replay_failed))
        .route("/api/v1/webhook-deliveries/{id}/replay", post(replay_one))
        .map(|r| r.layer(Extension(messaging)))
}

fn endpoint_json(e: &EndpointRow) -> Value {
    json!({
        "id": e.id,
        "url": e.url,
        "event_types": e.event_types,
        "enabled": e.enabled,
        "disabled_reason": e.disabled_reason,
        "failing_since": e.failing_since.map(rfc3339),
        "previous_secret_valid_until": e.previous_secret_until.map(rfc3339),
        "created_at": rfc3339(e.created_at),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewEndpoint {
    url: String,
    event_types: Vec<String>,
}

async fn list(State(st): State<AppState>, caller: ApiCaller) -> ApiResult<Json<Value>> {
    caller.require("admin")?;
    let rows = st.store.webhook_endpoints().await?;
    Ok(Json(json!({ "endpoints": rows.iter().map(endpoint_json).collect::<Vec<_>>() })))
}

/// `POST /api/v1/webhook-endpoints {url, event_types}` → 201 with the `secret` (shown once).
async fn create(
    State(st): State<AppState>,
    Extension(m): Extension<Arc<Messaging>>,
    caller: ApiCaller,
    body: Result<Json<NewEndpoint>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require("admin")?;
    let Json(b) = body?;
    let (e, secret) = st.store.create_webhook_endpoint(&b.url, &b.event_types, m.webhooks.allow_private).await?;
    tracing::info!(endpoint = e.id, url = %e.url, caller = %caller.name, "webhook endpoint created");
    let mut v = endpoint_json(&e);
    v["secret"] = secret.into();
    Ok((StatusCode::CREATED, Json(v)))
}

async fn get_one(State(st): State<AppState>, caller: ApiCaller, ApiPath(id): ApiPath<i64>) -> ApiResult<Json<Value>> {
    caller.require("admin")?;
    Ok(Json(endpoint_json(&st.store.webhook_endpoint(id).await?)))
}

async fn delete(State(st): State<AppState>, caller: ApiCaller, ApiPath(id): ApiPath<i64>) -> ApiResult<StatusCode> {
    caller.require("admin")?;
    st.store.delete_webhook_endpoint(id).await?;
    tracing::info!(endpoint = id, caller = %caller.name, "webhook endpoint deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// A new secret (shown once); the old one keeps signing for 24 hours.
async fn rotate(State(st): State<AppState>, caller: ApiCaller, ApiPath(id): ApiPath<i64>) -> ApiResult<Json<Value>> {
    caller.require("admin")?;
    let secret = st.store.rotate_webhook_secret(id).await?;
    tracing::info!(endpoint = id, caller = %caller.name, "webhook secret rotated");
    let mut v = endpoint_json(&st.store.webhook_endpoint(id).await?);
    v["secret"] = secret.into();
    Ok(Json(v))
}

async fn deliveries(State(st): State<AppState>, caller: ApiCaller, ApiPath(id): ApiPath<i64>) -> ApiResult<Json<Value>> {
    caller.require("admin")?;
    st.store.webhook_endpoint(id).await?;
    let rows = st.store.webhook_deliveries(id, 200).await?;
    let out: Vec<Value> = rows
        .iter()
        .map(|d| {
            json!({
                "id": d.id, "webhook_id": d.message_id, "type": d.kind, "status": d.status, "attempts": d.attempts,
                "next_attempt_at": d.next_attempt_at.map(rfc3339), "last_status": d.last_status, "last_error": d.last_error,
                "created_at": rfc3339(d.created_at),
                "attempt_log": d.attempt_log.iter().map(|a| json!({
                    "n": a.n, "started_at": rfc3339(a.started_at), "status": a.status_code, "duration_ms": a.duration_ms,
                    "error": a.error, "response": a.response_excerpt,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(Json(json!({ "deliveries": out })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplaySince {
    /// RFC 3339.
    since: String,
}

/// Every failed delivery of the endpoint since a time, again, with their own `webhook-id`s.
async fn replay_failed(
    State(st): State<AppState>,
    Extension(m): Extension<Arc<Messaging>>,
    caller: ApiCaller,
    ApiPath(id): ApiPath<i64>,
    body: Result<Json<ReplaySince>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require("admin")?;
    let Json(b) = body?;
    let since = time::OffsetDateTime::parse(b.since.trim(), &time::format_description::well_known::Rfc3339).map_err(|_| {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_since", "since is an RFC 3339 time, e.g. 2026-12-06T00:00:00Z")
    })?;
    let n = st.store.replay_failed_webhooks(id, (since.unix_timestamp_nanos() / 1_000_000) as i64).await?;
    m.webhooks.wake.notify_one();
    tracing::info!(endpoint = id, replayed = n, caller = %caller.name, "failed webhook deliveries replayed");
    Ok((StatusCode::ACCEPTED, Json(json!({ "replayed": n }))))
}

async fn replay_one(
    State(st): State<AppState>,
    Extension(m): Extension<Arc<Messaging>>,
    caller: ApiCaller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require("admin")?;
    st.store.replay_webhook_delivery(id).await?;
    m.webhooks.wake.notify_one();
    Ok((StatusCode::ACCEPTED, Json(json!({ "replayed": 1 }))))
}
