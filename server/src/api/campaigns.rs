//! Broadcasts over the API (issue 14, item 6): `POST /api/v1/campaigns` (a draft with its
//! preflight), `GET /api/v1/campaigns` (the list), `GET /api/v1/campaigns/{id}`, `POST /api/v1/campaigns/{id}/start|pause|cancel`.
//! Admin scope: a broadcast writes to many people.

use super::*;
use app::ssr::AppState;
use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use dropcheck_core::contacts::campaign::CampaignSpec;
use dropcheck_core::store::CampaignView;
use serde_json::{json, Value};

fn campaign_json(c: &CampaignView) -> Value {
    let mut v = json!(c);
    v["created_at"] = json!(rfc3339(c.created_at));
    v["started_at"] = json!(c.started_at.map(rfc3339));
    v["finished_at"] = json!(c.finished_at.map(rfc3339));
    v
}

/// `POST /api/v1/campaigns` → 201: the draft with its preflight (`eligible`, `excluded` by reason).
pub(crate) async fn create(
    State(st): State<AppState>,
    caller: ApiCaller,
    body: Result<Json<CampaignSpec>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require("admin")?;
    let Json(spec) = body?;
    let c = st.store.create_campaign(&spec, &format!("API key {}", caller.name)).await?;
    tracing::info!(campaign = c.id, caller = %caller.name, eligible = c.eligible, "campaign created");
    Ok((StatusCode::CREATED, Json(campaign_json(&c))))
}

/// `GET /api/v1/campaigns`: the latest 200, newest first.
pub(crate) async fn list(State(st): State<AppState>, caller: ApiCaller) -> ApiResult<Json<Value>> {
    caller.require("read")?;
    let rows: Vec<Value> = st
        .store
        .campaigns(200)
        .await?
        .iter()
        .map(|c| {
            let mut v = json!(c);
            v["created_at"] = json!(rfc3339(c.created_at));
            v["started_at"] = json!(c.started_at.map(rfc3339));
            v["finished_at"] = json!(c.finished_at.map(rfc3339));
            v
        })
        .collect();
    Ok(Json(json!({ "campaigns": rows })))
}

/// `GET /api/v1/campaigns/{id}`
pub(crate) async fn get_one(State(st): State<AppState>, caller: ApiCaller, ApiPath(id): ApiPath<i64>) -> ApiResult<Json<Value>> {
    caller.require("read")?;
    Ok(Json(campaign_json(&st.store.campaign(id).await?)))
}

/// `POST /api/v1/campaigns/{id}/{action}`: start (or resume), pause, cancel.
pub(crate) async fn act(
    State(st): State<AppState>,
    caller: ApiCaller,
    ApiPath((id, action)): ApiPath<(i64, String)>,
) -> ApiResult<Json<Value>> {
    caller.require("admin")?;
    Ok(Json(campaign_json(&st.store.campaign_action(id, &action).await?)))
}
