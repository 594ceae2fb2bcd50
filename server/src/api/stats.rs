//! Reports over the API: `GET /api/v1/stats/contractors?project=&days=` — the contractor
//! scorecards (`dropcheck_core::scorecards`).

use super::*;
use app::ssr::AppState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
pub(super) struct ScorecardQuery {
    /// A project's name; blank or absent: every project.
    project: Option<String>,
    /// The period, 1–366 days back from now (30).
    days: Option<i64>,
}

/// `GET /api/v1/stats/contractors` → `{project, days, contractors: [...]}`.
pub(super) async fn contractors(
    State(st): State<AppState>,
    caller: ApiCaller,
    query: Result<Query<ScorecardQuery>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    caller.require("read")?;
    let Query(q) = query?;
    let project = q.project.as_deref().map(str::trim).filter(|p| !p.is_empty());
    let project_id = match project {
        Some(name) => Some(
            st.store
                .project_by_name(name)
                .await?
                .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "project_not_found", format!("there is no project named '{name}'")))?
                .project_id
                .get(),
        ),
        None => None,
    };
    let days = q.days.unwrap_or(30);
    let cards = st.store.scorecards(project_id, days, dropcheck_core::now_ms()).await?;
    Ok(Json(json!({ "project": project, "days": days, "contractors": cards })))
}
