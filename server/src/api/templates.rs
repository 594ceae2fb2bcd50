//! Message templates over the API: `/api/v1/templates` (also mounted under
//! `/api/notifications/templates` for the predecessor).

use super::*;
use app::ssr::AppState;
use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
pub(crate) struct TemplateBody {
    #[serde(default)]
    name: Option<String>,
    body: String,
    #[serde(default)]
    description: Option<String>,
    /// A JSON object of sample variables.
    #[serde(default)]
    sample_vars: Option<Value>,
    /// A JSON object, see the README (`twilio` / `meta`); null removes it.
    #[serde(default)]
    provider_template: Option<Value>,
    #[serde(default)]
    enabled: Option<bool>,
}

fn template_json(t: &dropcheck_core::template_store::TemplateRow) -> Value {
    let parse = |s: &Option<String>| s.as_deref().and_then(|s| serde_json::from_str::<Value>(s).ok());
    json!({
        "name": t.name,
        "body": t.body,
        "description": t.description,
        "enabled": t.enabled,
        "built_in": t.built_in(),
        "sample_vars": parse(&t.sample_vars).unwrap_or_else(|| json!({})),
        "provider_template": parse(&t.provider_template),
        "updated_at": rfc3339(t.updated_at),
    })
}

impl TemplateBody {
    fn input(self, name: String, enabled_default: bool) -> dropcheck_core::template_store::TemplateInput {
        dropcheck_core::template_store::TemplateInput {
            name,
            body: self.body,
            description: self.description.unwrap_or_default(),
            sample_vars: self.sample_vars.map(|v| v.to_string()).unwrap_or_default(),
            provider_template: self.provider_template.filter(|v| !v.is_null()).map(|v| v.to_string()).unwrap_or_default(),
            enabled: self.enabled.unwrap_or(enabled_default),
        }
    }
}

/// `GET /api/v1/templates`, `GET /api/notifications/templates`.
pub(crate) async fn list_templates(State(st): State<AppState>, caller: ApiCaller) -> ApiResult<Json<Value>> {
    caller.require("read")?;
    let rows = st.store.templates().await?;
    Ok(Json(json!({ "success": true, "templates": rows.iter().map(template_json).collect::<Vec<_>>() })))
}

pub(crate) async fn get_template(State(st): State<AppState>, caller: ApiCaller, ApiPath(name): ApiPath<String>) -> ApiResult<Json<Value>> {
    caller.require("read")?;
    Ok(Json(template_json(&st.store.template(&name).await?)))
}

/// `POST /api/v1/templates`: 201 with the template; a syntax error or unknown variable is 422.
pub(crate) async fn create_template(
    State(st): State<AppState>,
    caller: ApiCaller,
    body: Result<Json<TemplateBody>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require("admin")?;
    let Json(body) = body?;
    let name = body.name.clone().unwrap_or_default();
    let t = st.store.save_template(&body.input(name, true), true).await?;
    tracing::info!(template = %t.name, caller = %caller.name, "template created through the API");
    Ok((StatusCode::CREATED, Json(template_json(&t))))
}

/// `PUT /api/v1/templates/{name}`: replaces the template's fields.
pub(crate) async fn update_template(
    State(st): State<AppState>,
    caller: ApiCaller,
    ApiPath(name): ApiPath<String>,
    body: Result<Json<TemplateBody>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    caller.require("admin")?;
    let Json(body) = body?;
    let current = st.store.template(&name).await?;
    let t = st.store.save_template(&body.input(name, current.enabled), false).await?;
    tracing::info!(template = %t.name, caller = %caller.name, "template updated through the API");
    Ok(Json(template_json(&t)))
}
