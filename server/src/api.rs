//! The HTTP API (SPEC §7): the predecessors' routes with their exact shapes, and the native
//! `/api/v1`. JSON in and out, API keys for authentication, and every error a JSON body
//! `{"error": code, "message": text}` with a fitting status; never a 500 for bad input.

use app::ssr::AppState;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use dropcheck_core::domain::{DropNumber, DropStatus, Phone, Role, StepNo, Verdict};
use dropcheck_core::lifecycle::Actor;
use dropcheck_core::outbox::Outgoing;
use dropcheck_core::store::{ActorRef, Cursor, DropDetail, DropFilter, DropSummary, StepVerdict};
use dropcheck_core::{auth, CoreError};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/db/test", get(db_test))
        .route("/api/submit-installation", post(submit_installation))
        .route("/api/resubmit", post(resubmit))
        .route("/api/v1/drops", get(list_drops))
        .route("/api/v1/drops/{number}", get(get_drop))
        .route("/api/v1/drops/{number}/review", post(review_drop))
        .route("/api/v1/messages", get(list_messages))
        .route("/api/v1/messages/{id}/resend", post(resend_message))
        .route("/api/v1/templates", get(list_templates).post(create_template))
        .route("/api/v1/templates/{name}", get(get_template).put(update_template))
        .route("/send", post(send))
        .route("/api/{*rest}", any(not_found))
}

/// An API error: the status, a stable code, and a message for people.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into() }
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if e.is_internal() {
            tracing::error!(error = ?e, "API request failed");
        }
        Self { status, code: e.code(), message: e.public_message() }
    }
}

impl From<dropcheck_core::InputError> for ApiError {
    fn from(e: dropcheck_core::InputError) -> Self {
        CoreError::from(e).into()
    }
}

/// Malformed JSON is 400; well-formed JSON with missing or mistyped fields is 422.
impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::JsonDataError(e) => Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", e.body_text()),
            JsonRejection::JsonSyntaxError(e) => Self::new(StatusCode::BAD_REQUEST, "malformed_json", e.body_text()),
            JsonRejection::MissingJsonContentType(_) => {
                Self::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "send JSON with Content-Type: application/json")
            }
            other => Self::new(StatusCode::BAD_REQUEST, "bad_request", other.body_text()),
        }
    }
}

/// A path parameter, refused with the JSON error (404: a path that names nothing) instead of
/// axum's plain-text answer.
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

impl From<axum::extract::rejection::PathRejection> for ApiError {
    fn from(r: axum::extract::rejection::PathRejection) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("no such resource: {}", r.body_text()))
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_query", r.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_client_error() {
            tracing::info!(status = self.status.as_u16(), code = self.code, "API request refused: {}", self.message);
        }
        (self.status, Json(json!({ "success": false, "error": self.code, "message": self.message }))).into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such API route")
}

/// The caller, authenticated by an API key (`X-API-Key` or `Authorization: Bearer`).
#[derive(Debug, Clone)]
pub struct ApiCaller {
    pub name: String,
    pub scopes: Vec<String>,
}

impl ApiCaller {
    pub fn require(&self, scope: &str) -> ApiResult<()> {
        if self.scopes.iter().any(|s| s == scope || s == "admin") {
            Ok(())
        } else {
            Err(ApiError::new(StatusCode::FORBIDDEN, "insufficient_scope", format!("this API key lacks the '{scope}' scope")))
        }
    }
    fn actor(&self) -> ActorRef {
        let mut a = ActorRef::system(format!("api:{}", self.name));
        if self.scopes.iter().any(|s| s == "admin") {
            a.kind = Actor::User(Role::Admin);
        }
        a
    }
}

impl FromRequestParts<AppState> for ApiCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Self::Rejection> {
        let header = |n: &str| parts.headers.get(n).and_then(|v| v.to_str().ok()).map(str::trim);
        let key = header("x-api-key")
            .or_else(|| header("authorization").and_then(|a| a.strip_prefix("Bearer ").or_else(|| a.strip_prefix("bearer "))))
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                ApiError::new(StatusCode::UNAUTHORIZED, "missing_api_key", "send an API key in X-API-Key or Authorization: Bearer")
            })?;
        if let Some(bridge) = &st.settings.bridge_api_key {
            if auth::secret_eq(key, bridge) {
                return Ok(ApiCaller { name: "bridge".into(), scopes: vec!["admin".into()] });
            }
        }
        match st.store.api_key_by_hash(&auth::hash_api_key(key)).await.map_err(ApiError::from)? {
            Some(k) if k.revoked_at.is_none() => {
                Ok(ApiCaller { name: k.name, scopes: k.scopes.split_whitespace().map(String::from).collect() })
            }
            Some(_) => Err(ApiError::new(StatusCode::UNAUTHORIZED, "revoked_api_key", "this API key has been revoked")),
            None => Err(ApiError::new(StatusCode::UNAUTHORIZED, "invalid_api_key", "this API key is not valid")),
        }
    }
}

/// The request's `Idempotency-Key` header, if any: a client that retries a request with the
/// same key gets the message queued the first time, and nothing is queued twice.
pub struct IdempotencyKey(Option<String>);

impl IdempotencyKey {
    /// The outbox key: the caller's own key under the caller's name (two callers' keys
    /// never collide); `None` without a header (each request is a cause of its own).
    pub fn for_caller(&self, caller: &ApiCaller) -> Option<String> {
        self.0.as_ref().map(|k| format!("api:{}:{k}", caller.name))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let Some(v) = parts.headers.get("idempotency-key") else { return Ok(Self(None)) };
        let bad = || {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_idempotency_key",
                "Idempotency-Key is 1–255 visible ASCII characters (a UUID, for example)",
            )
        };
        let k = v.to_str().map_err(|_| bad())?.trim();
        if k.is_empty() || k.len() > 255 || !k.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(bad());
        }
        Ok(Self(Some(k.to_string())))
    }
}

// ------------------------------------------------------------------ health

async fn health(State(st): State<AppState>) -> Json<Value> {
    Json(json!({
        "success": true,
        "status": "ok",
        "message": "Dropcheck is running",
        "database": st.store.backend(),
        "uptime_seconds": st.settings.started_at.elapsed().as_secs(),
    }))
}

async fn db_test(State(st): State<AppState>) -> Response {
    match st.store.ping().await {
        Ok(()) => Json(json!({ "success": true, "message": "database connection ok", "database": st.store.backend() })).into_response(),
        Err(e) => {
            tracing::error!(error = ?e, "database check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "success": false, "message": "database unreachable", "database": st.store.backend() })),
            )
                .into_response()
        }
    }
}

// ------------------------------------------------------------------ predecessor routes

#[derive(Deserialize)]
struct SubmitInstallation {
    drop_number: String,
    contractor_number: String,
    project_name: String,
}

async fn submit_installation(
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
                project_id: 0,
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
struct Resubmit {
    drop_number: String,
}

async fn resubmit(State(st): State<AppState>, caller: ApiCaller, body: Result<Json<Resubmit>, JsonRejection>) -> ApiResult<Json<Value>> {
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

// ------------------------------------------------------------------ native /api/v1

pub(crate) fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

#[derive(Serialize)]
struct ContractorJson {
    phone: String,
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
struct ListQuery {
    status: Option<String>,
    project: Option<String>,
    contractor: Option<String>,
    q: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
}

async fn list_drops(
    State(st): State<AppState>,
    caller: ApiCaller,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    caller.require("read")?;
    let Query(q) = query?;
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
    };
    let cursor = some(q.cursor).map(|c| Cursor::parse(&c)).transpose()?;
    let (rows, next) = st.store.list_drops(&filter, cursor, q.limit.unwrap_or(50)).await?;
    Ok(Json(json!({
        "drops": rows.into_iter().map(summary_json).collect::<Vec<_>>(),
        "next_cursor": next.map(|c| c.encode()),
    })))
}

async fn get_drop(State(st): State<AppState>, caller: ApiCaller, ApiPath(number): ApiPath<String>) -> ApiResult<Json<Value>> {
    caller.require("read")?;
    let number = DropNumber::parse(&number)?;
    Ok(Json(detail_json(st.store.drop_detail(&number).await?)))
}

#[derive(Deserialize)]
struct StepInput {
    verdict: String,
    reason: Option<String>,
    note: Option<String>,
}

#[derive(Deserialize)]
struct ReviewInput {
    #[serde(default)]
    steps: BTreeMap<String, StepInput>,
    action: Option<String>,
}

/// Records verdicts and then, per `action`, marks the drop incomplete, approves it, or only
/// saves. An action the lifecycle does not allow is 409 with the reason.
async fn review_drop(
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

// ------------------------------------------------------------------ templates

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

// ------------------------------------------------------------------ messages

#[derive(Deserialize)]
struct SendBody {
    to: String,
    message: String,
    /// A picture or document for the provider to fetch; `message` is its caption.
    #[serde(default)]
    media_url: Option<String>,
}

/// `POST /send`: queues a free-form WhatsApp message through the outbox.
async fn send(
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
    };
    let id = st.store.queue_outbound(&out, dropcheck_core::now_ms()).await?;
    tracing::info!(message_id = id, caller = %caller.name, "message queued through the API");
    Ok(Json(json!({
        "success": true,
        "id": id,
        "message_sid": format!("queued-{id}"),
        "to": format!("whatsapp:{}", phone.as_str()),
        "status": "queued",
    })))
}

#[derive(Deserialize)]
struct MessagesQuery {
    phone: Option<String>,
    direction: Option<String>,
    status: Option<String>,
    drop: Option<String>,
    days: Option<i64>,
    cursor: Option<String>,
    limit: Option<i64>,
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

async fn list_messages(
    State(st): State<AppState>,
    caller: ApiCaller,
    q: Result<Query<MessagesQuery>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    caller.require("read")?;
    let Query(q) = q?;
    let filter = dropcheck_core::outbox::MessageFilter::parse(q.phone, q.direction, q.status, q.drop, q.days, dropcheck_core::now_ms())?;
    let cursor = match q.cursor.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
        Some(c) => Some(
            c.parse::<i64>()
                .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "invalid_cursor", "the cursor is not one this server handed out"))?,
        ),
        None => None,
    };
    let (rows, next) = st.store.list_messages(&filter, cursor, q.limit.unwrap_or(50)).await?;
    Ok(Json(json!({
        "messages": rows.iter().map(message_json).collect::<Vec<_>>(),
        "next_cursor": next.map(|n| n.to_string()),
    })))
}

pub(crate) async fn resend_message(State(st): State<AppState>, caller: ApiCaller, ApiPath(id): ApiPath<i64>) -> ApiResult<Json<Value>> {
    caller.require("send")?;
    st.store.resend(id, dropcheck_core::now_ms()).await?;
    Ok(Json(json!({ "success": true, "id": id, "status": "queued" })))
}
