//! Automation over the API: rules (`/api/v1/automations`), their dry runs and run log, and
//! events other systems post (`POST /api/v1/events`). Reading needs the `read` scope;
//! changing rules `admin`; posting events `send` (an event's rules may send messages).

use super::*;
use app::ssr::AppState;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use dropcheck_core::automation::RuleSpec;
use dropcheck_core::store::{RuleRow, RunRow};
use serde::Deserialize;
use serde_json::{json, Value};

pub(crate) fn rule_json(r: &RuleRow) -> Value {
    let mut v = serde_json::to_value(&r.spec).unwrap_or_else(|_| json!({}));
    if let Some(m) = v.as_object_mut() {
        m.insert("id".into(), r.id.into());
        m.insert("version".into(), r.version.into());
        m.insert("built_in".into(), r.builtin.is_some().into());
        m.insert("description".into(), r.spec.trigger.describe().into());
        m.insert("created_at".into(), rfc3339(r.created_at).into());
        m.insert("updated_at".into(), rfc3339(r.updated_at).into());
        m.insert("last_run_at".into(), r.last_run_at.map(rfc3339).into());
    }
    v
}

pub(crate) fn run_json(r: &RunRow) -> Value {
    json!({
        "id": r.id,
        "rule_id": r.rule_id,
        "rule_version": r.rule_version,
        "status": r.status,
        "trigger": r.trigger,
        "subject": r.subject,
        "detail": r.detail,
        "context": r.context,
        "actions": r.actions.iter().map(|a| json!({
            "type": a.kind,
            "status": a.status,
            "recipient": if a.recipient.is_empty() { Value::Null } else { a.recipient.clone().into() },
            "message_id": a.message_id,
            "message_status": a.message_status,
            "detail": a.detail,
            "error": (a.status == "failed").then(|| a.detail.clone()),
        })).collect::<Vec<_>>(),
        "started_at": rfc3339(r.started_at),
    })
}

/// A rule body: the rule's JSON (read as a value first, so a wrong field is a 422 naming it).
fn spec_of(body: Result<Json<Value>, JsonRejection>) -> ApiResult<RuleSpec> {
    let Json(v) = body?;
    Ok(RuleSpec::parse(&v)?)
}

/// `GET /api/v1/automations`
pub(crate) async fn list(State(st): State<AppState>, caller: ApiCaller) -> ApiResult<Json<Value>> {
    caller.require("read")?;
    let rules = st.store.automation_rules().await?;
    Ok(Json(json!({ "automations": rules.iter().map(rule_json).collect::<Vec<_>>() })))
}

/// `POST /api/v1/automations` → 201 with the rule.
pub(crate) async fn create(
    State(st): State<AppState>,
    caller: ApiCaller,
    body: Result<Json<Value>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require("admin")?;
    let r = st.store.create_rule(&spec_of(body)?).await?;
    tracing::info!(rule = r.id, name = %r.spec.name, caller = %caller.name, "automation rule created through the API");
    Ok((StatusCode::CREATED, Json(rule_json(&r))))
}

pub(crate) async fn get_one(State(st): State<AppState>, caller: ApiCaller, ApiPath(id): ApiPath<i64>) -> ApiResult<Json<Value>> {
    caller.require("read")?;
    Ok(Json(rule_json(&st.store.automation_rule(id).await?)))
}

/// `PUT /api/v1/automations/{id}`: replaces the rule.
pub(crate) async fn update(
    State(st): State<AppState>,
    caller: ApiCaller,
    ApiPath(id): ApiPath<i64>,
    body: Result<Json<Value>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    caller.require("admin")?;
    let r = st.store.update_rule(id, &spec_of(body)?).await?;
    tracing::info!(rule = r.id, version = r.version, caller = %caller.name, "automation rule changed through the API");
    Ok(Json(rule_json(&r)))
}

pub(crate) async fn delete(State(st): State<AppState>, caller: ApiCaller, ApiPath(id): ApiPath<i64>) -> ApiResult<StatusCode> {
    caller.require("admin")?;
    st.store.delete_rule(id).await?;
    tracing::info!(rule = id, caller = %caller.name, "automation rule deleted through the API");
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/automations/{id}/dry-run` with a sample event (the trigger's variables):
/// what the rule would do, writing nothing.
pub(crate) async fn dry_run(
    State(st): State<AppState>,
    caller: ApiCaller,
    ApiPath(id): ApiPath<i64>,
    body: Result<Json<Value>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    caller.require("read")?;
    let Json(sample) = body?;
    let d = st.store.dry_run(id, &sample).await?;
    Ok(Json(json!({
        "status": d.status,
        "trigger_matches": d.trigger_matches,
        "conditions": match &d.conditions { Ok(b) => json!(b), Err(_) => Value::Null },
        "condition_error": d.conditions.as_ref().err(),
        "actions": d.actions.iter().map(|a| json!({
            "type": a.kind, "status": a.status, "recipient": a.recipient, "text": (a.status == "would_send").then(|| a.detail.clone()),
            "error": (a.status != "would_send").then(|| a.detail.clone()),
        })).collect::<Vec<_>>(),
    })))
}

#[derive(Deserialize)]
pub(crate) struct RunsQuery {
    #[serde(default)]
    before: Option<i64>,
    #[serde(default)]
    limit: Option<i64>,
}

/// `GET /api/v1/automations/{id}/runs?before=&limit=`: newest first.
pub(crate) async fn runs(
    State(st): State<AppState>,
    caller: ApiCaller,
    ApiPath(id): ApiPath<i64>,
    q: Result<Query<RunsQuery>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    caller.require("read")?;
    let Query(q) = q?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_limit", "limit is 1–500"));
    }
    st.store.automation_rule(id).await?;
    let runs = st.store.automation_runs(id, q.before, limit).await?;
    let next = (runs.len() as i64 == limit).then(|| runs.last().map(|r| r.id)).flatten();
    Ok(Json(json!({ "runs": runs.iter().map(run_json).collect::<Vec<_>>(), "next_before": next })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EventBody {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default = "empty_object")]
    data: Value,
}

fn empty_object() -> Value {
    json!({})
}

/// `POST /api/v1/events {type, data}` → 202 `{event_id}`; the same `Idempotency-Key` again
/// is the same event (202 with its id, `"duplicate": true`), its rules not run again.
pub(crate) async fn post_event(
    State(st): State<AppState>,
    caller: ApiCaller,
    key: IdempotencyKey,
    body: Result<Json<EventBody>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require("send")?;
    let Json(body) = body?;
    let key = key.for_caller(&caller);
    let (id, created) = st.store.post_event(&body.kind, &body.data, key.as_deref()).await?;
    if created {
        tracing::info!(event = id, kind = %body.kind, caller = %caller.name, "event posted");
    }
    Ok((StatusCode::ACCEPTED, Json(json!({ "event_id": id, "duplicate": !created }))))
}
