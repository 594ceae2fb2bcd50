//! Drops over the API: the predecessor's `POST /api/submit-installation` and
//! `POST /api/resubmit`, and the native `GET /api/v1/drops`, `GET /api/v1/drops/{number}`
//! and `POST /api/v1/drops/{number}/review`.

use super::*;
use app::ssr::AppState;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use dropcheck_core::domain::{DropNumber, DropStatus, Phone, StepNo, Verdict};
use dropcheck_core::store::{Cursor, DropDetail, DropFilter, DropSummary, StepVerdict};
use dropcheck_core::CoreError;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;

#[derive(Deserialize)]
pub(super) struct SubmitInstallation {
    drop_number: String,
    contractor_number: String,
    project_name: String,
}

pub(super) async fn submit_installation(
    State(st): State<AppState>,
    caller: ApiCaller,
    body: Result<Json<SubmitInstallation>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    caller.require("submit")?;
    let Json(body) = body?;
    // The input first (422 with its code), then the project: an unknown name is created with
    // the default checklist, as the predecessor accepted any project name.
    let number = DropNumber::parse(&body.drop_number)?;
    let phone = Phone::parse(&body.contractor_number)?;
    let project = match st.store.project_by_name(&body.project_name).await? {
        Some(p) => p,
        None => {
            let new = dropcheck_core::store::Project {
                project_id: dropcheck_core::ids::ProjectId(0),
                name: body.project_name.trim().to_string(),
                drop_pattern: dropcheck_core::domain::DEFAULT_DROP_PATTERN.to_string(),
                created_at: 0,
                wait_for_done: false,
                created_by: String::new(),
            };
            new.check_drop_number(&number)?;
            let by = format!("API key {}", caller.name);
            let p = match st.store.create_project_by(&body.project_name, dropcheck_core::domain::DEFAULT_DROP_PATTERN, &by).await {
                Ok(p) => p,
                // Created by a parallel call meanwhile.
                Err(CoreError::Conflict { .. }) => st.store.project_by_name(&body.project_name).await?.ok_or_else(|| {
                    ApiError::new(StatusCode::CONFLICT, "project_exists", "the project was created and removed meanwhile; try again")
                })?,
                Err(e) => return Err(e.into()),
            };
            tracing::info!(project = ?p.name, caller = ?caller.name, "project created by submit-installation");
            p
        }
    };
    let (drop, created) = st.store.create_drop(&project, &number, Some(&phone), DropStatus::Unreviewed, &caller.actor()).await?;
    Ok(Json(json!({
        "success": true,
        "action": if created { "created" } else { "exists" },
        "drop_number": drop.drop_number,
        "message": if created { format!("Drop {} created in {}", drop.drop_number, project.name) }
                   else { format!("Drop {} already exists ({})", drop.drop_number, drop.status) },
    })))
}

#[derive(Deserialize)]
pub(super) struct Resubmit {
    drop_number: String,
}

pub(super) async fn resubmit(
    State(st): State<AppState>,
    caller: ApiCaller,
    body: Result<Json<Resubmit>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    caller.require("submit")?;
    let Json(body) = body?;
    let number = DropNumber::parse(&body.drop_number)?;
    st.store.resubmit(&number, &caller.actor()).await?;
    Ok(Json(json!({
        "success": true,
        "drop_number": number.as_str(),
        "message": format!("Drop {number} resubmitted for review"),
    })))
}

#[derive(Serialize)]
struct ContractorJson {
    phone: dropcheck_core::domain::Phone,
    name: String,
}

fn summary_json(d: DropSummary) -> Value {
    json!({
        "drop_number": d.drop_number,
        "status": d.status,
        "project": d.project,
        "contractor": d.contractor_phone.map(|phone| ContractorJson { phone, name: d.contractor_name.unwrap_or_default() }),
        "round": d.round,
        "photo_steps": d.photo_steps,
        "step_count": d.step_count,
        "open_flags": d.open_flags,
        "created_at": rfc3339(d.created_at),
        "activity_at": rfc3339(d.activity_at),
    })
}

fn detail_json(d: DropDetail) -> Value {
    json!({
        "drop_number": d.drop_number,
        "status": d.status,
        "project": d.project,
        "contractor": d.contractor.map(|c| ContractorJson { phone: c.phone, name: c.name }),
        "round": d.round,
        "created_at": rfc3339(d.created_at),
        "activity_at": rfc3339(d.activity_at),
        "steps": d.steps.into_iter().map(|s| json!({
            "number": s.number,
            "name": s.name,
            "verdict": s.verdict,
            "reason": s.reason,
            "note": s.note,
            "previous_verdict": s.previous_verdict,
            "photos": s.photos.into_iter().map(|p| json!({
                "id": p.photo_id,
                "sha256": p.sha256,
                "mime_type": p.mime_type,
                "round": p.round,
                "received_at": rfc3339(p.received_at),
                "width": p.width,
                "height": p.height,
                "checks": p.checks.into_iter().map(|c| json!({
                    "kind": c.kind,
                    "result": c.result,
                    "value": c.value,
                    "detail": c.detail,
                    "resolved_at": c.resolved_at.map(rfc3339),
                    "resolved_by": c.resolved_by,
                    "match": c.match_photo_id.map(|id| json!({
                        "photo_id": id, "drop_number": c.match_drop, "step": c.match_step, "distance": c.value,
                    })),
                    "suggestion": c.suggestion(),
                    "values": c.read_values(),
                    "model": c.vision_model,
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "history": d.history.into_iter().map(|h| json!({
            "at": rfc3339(h.at),
            "actor": h.actor,
            "kind": h.kind,
            "detail": h.detail,
        })).collect::<Vec<_>>(),
    })
}

#[derive(Deserialize)]
pub(super) struct ListQuery {
    status: Option<String>,
    project: Option<String>,
    contractor: Option<String>,
    q: Option<String>,
    flagged: Option<bool>,
    cursor: Option<String>,
    limit: Option<i64>,
    /// `json` (the default) or `csv`: every matching drop, streamed (no cursor, no limit).
    format: Option<String>,
}

pub(super) async fn list_drops(
    State(st): State<AppState>,
    caller: ApiCaller,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    caller.require("read")?;
    let Query(q) = query?;
    let csv = wants_csv(q.format.as_deref())?;
    let some = |o: Option<String>| o.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let project_id = match some(q.project) {
        Some(name) => Some(
            st.store
                .project_by_name(&name)
                .await?
                .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "project_not_found", format!("there is no project named '{name}'")))?
                .project_id,
        ),
        None => None,
    };
    let filter = DropFilter {
        status: some(q.status).map(|s| DropStatus::parse(&s)).transpose()?,
        project_id,
        contractor: some(q.contractor),
        q: some(q.q),
        from_ms: None,
        to_ms: None,
        flagged: q.flagged.unwrap_or(false),
    };
    if csv {
        return Ok(crate::csv_export::csv_response("drops.csv", crate::csv_export::drops_csv(st.store.clone(), filter).await?));
    }
    let cursor = some(q.cursor).map(|c| Cursor::parse(&c)).transpose()?;
    let (rows, next) = st.store.list_drops(&filter, cursor, q.limit.unwrap_or(50)).await?;
    Ok(Json(json!({
        "drops": rows.into_iter().map(summary_json).collect::<Vec<_>>(),
        "next_cursor": next.map(|c| c.encode()),
    }))
    .into_response())
}

/// `GET /api/v1/drops/{number}/evidence.pdf`: the drop's evidence pack.
pub(super) async fn evidence(
    State(st): State<AppState>,
    caller: ApiCaller,
    ApiPath(number): ApiPath<String>,
) -> ApiResult<axum::response::Response> {
    caller.require("read")?;
    let number = DropNumber::parse(&number)?;
    let pdf = dropcheck_core::evidence::evidence_pdf(&st.store, &st.media, &number).await?;
    Ok(crate::web::pdf_response(&number, pdf))
}

pub(super) async fn get_drop(State(st): State<AppState>, caller: ApiCaller, ApiPath(number): ApiPath<String>) -> ApiResult<Json<Value>> {
    caller.require("read")?;
    let number = DropNumber::parse(&number)?;
    Ok(Json(detail_json(st.store.drop_detail(&number).await?)))
}

#[derive(Deserialize)]
pub(super) struct StepInput {
    verdict: String,
    reason: Option<String>,
    note: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct ReviewInput {
    #[serde(default)]
    steps: BTreeMap<String, StepInput>,
    action: Option<String>,
}

/// Records verdicts and then, per `action`, marks the drop incomplete, approves it, or only
/// saves. An action the lifecycle does not allow is 409 with the reason.
pub(super) async fn review_drop(
    State(st): State<AppState>,
    caller: ApiCaller,
    ApiPath(number): ApiPath<String>,
    body: Result<Json<ReviewInput>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    caller.require("admin")?;
    let Json(body) = body?;
    let number = DropNumber::parse(&number)?;
    let action = body.action.as_deref().unwrap_or("save").trim().to_ascii_lowercase();
    if !matches!(action.as_str(), "save" | "incomplete" | "approve") {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_action",
            format!("'{action}' is not one of: save, incomplete, approve"),
        ));
    }
    let mut verdicts = vec![];
    for (step, s) in body.steps {
        verdicts.push(StepVerdict {
            step: StepNo::parse(&step)?,
            verdict: Verdict::parse(&s.verdict)?,
            reason: s.reason.map(|r| r.trim().to_string()).filter(|r| !r.is_empty()),
            note: s.note.unwrap_or_default(),
        });
    }
    // Check the action before writing verdicts, so a refused action changes nothing.
    let current = st.store.drop_detail(&number).await?;
    let actor = caller.actor();
    let wanted = match action.as_str() {
        "incomplete" => Some(dropcheck_core::lifecycle::Action::MarkIncomplete),
        "approve" => Some(dropcheck_core::lifecycle::Action::Approve),
        _ => None,
    };
    if let Some(a) = wanted {
        dropcheck_core::lifecycle::transition(current.status, a, actor.kind)?;
    }
    st.store.set_verdicts(&number, &verdicts, &actor).await?;
    match action.as_str() {
        "incomplete" => {
            st.store.mark_incomplete(&number, &actor).await?;
        }
        "approve" => st.store.approve(&number, true, &actor).await?,
        _ => {}
    }
    Ok(Json(detail_json(st.store.drop_detail(&number).await?)))
}
