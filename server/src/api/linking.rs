//! The predecessor's phone-linking endpoints: `POST
//! /api/integrations/whatsapp/link`, `/verify`, `/unlink`, and the webhook health `GET
//! /api/integrations/whatsapp/webhook`. They act for the signed-in user (a same-origin
//! request with the session cookie), or, with an `admin`-scoped API key, for the user named
//! by an extra `user` (e-mail) field.

use crate::api::{rfc3339, ApiCaller, ApiError, ApiResult};
use crate::routes::Routes;
use app::ssr::{session_user, AppState};
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Json;
use dropcheck_core::domain::{Email, Phone};
use dropcheck_core::now_ms;
use dropcheck_core::store::User;
use serde::Deserialize;
use serde_json::{json, Value};
use tower_sessions::Session;

pub fn router() -> Routes<AppState> {
    Routes::new()
        .route("/api/integrations/whatsapp/link", post(link))
        .route("/api/integrations/whatsapp/verify", post(verify))
        .route("/api/integrations/whatsapp/unlink", post(unlink))
        .route("/api/integrations/whatsapp/webhook", get(webhook_health))
}

/// Who a linking request acts for.
enum Acting {
    /// The signed-in user (cookie, same origin).
    User(User),
    /// An admin key, acting for the user named in the body.
    AdminKey(String),
}

impl FromRequestParts<AppState> for Acting {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Self::Rejection> {
        let has_key = parts.headers.contains_key("x-api-key") || parts.headers.contains_key("authorization");
        if has_key {
            let caller = ApiCaller::from_request_parts(parts, st).await?;
            caller.require("admin")?;
            return Ok(Acting::AdminKey(caller.name));
        }
        // A cookie's authority only counts from our own pages (CSRF).
        if !crate::web::same_origin(&parts.headers, &st.settings.public_url) {
            return Err(ApiError::new(StatusCode::FORBIDDEN, "cross_site", "cross-site request refused"));
        }
        let session = Session::from_request_parts(parts, st)
            .await
            .map_err(|_| ApiError::new(StatusCode::UNAUTHORIZED, "not_signed_in", "sign in, or send an admin API key"))?;
        match session_user(&session, &st.store).await? {
            Some(u) => Ok(Acting::User(u)),
            None => Err(ApiError::new(StatusCode::UNAUTHORIZED, "not_signed_in", "sign in, or send an admin API key")),
        }
    }
}

impl Acting {
    /// The user acted for: the session's, or the one an admin key names in `user`.
    async fn user(self, st: &AppState, named: Option<&str>) -> ApiResult<User> {
        match self {
            Acting::User(u) => Ok(u),
            Acting::AdminKey(key) => {
                let email = named.ok_or_else(|| {
                    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "missing_user", "with an API key, name the user by e-mail in \"user\"")
                })?;
                let email = Email::parse(email)?;
                tracing::info!(api_key = %key, "phone linking on behalf of a user");
                st.store
                    .user_by_email(&email)
                    .await?
                    .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "user_not_found", format!("no user {}", email.as_str())))
            }
        }
    }
}

#[derive(Deserialize)]
struct LinkBody {
    phone: String,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    user: Option<String>,
}

/// `POST /api/integrations/whatsapp/link` `{phone}` → `{success, phone, code, expires_at}`.
async fn link(State(st): State<AppState>, acting: Acting, body: Result<Json<LinkBody>, JsonRejection>) -> ApiResult<Json<Value>> {
    let Json(body) = body?;
    let user = acting.user(&st, body.user.as_deref()).await?;
    let phone = Phone::parse(&body.phone)?;
    let code = st.store.start_phone_link(user.user_id, &phone, now_ms()).await?;
    tracing::info!(user_id = user.user_id.get(), "phone link started");
    Ok(Json(json!({
        "success": true,
        "phone": code.phone.as_str(),
        "code": code.code,
        "expires_at": rfc3339(code.expires_at),
        "message": format!("Send VERIFY {} from WhatsApp on {} within 10 minutes.", code.code, code.phone.as_str()),
    })))
}

/// `POST /api/integrations/whatsapp/verify` `{phone, code}`.
async fn verify(State(st): State<AppState>, acting: Acting, body: Result<Json<LinkBody>, JsonRejection>) -> ApiResult<Json<Value>> {
    let Json(body) = body?;
    let user = acting.user(&st, body.user.as_deref()).await?;
    let phone = Phone::parse(&body.phone)?;
    let code = body.code.as_deref().map(str::trim).unwrap_or_default();
    if code.len() != 6 || !code.chars().all(|c| c.is_ascii_digit()) {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_code", "the code is 6 digits"));
    }
    let outcome = st.store.verify_phone_link(&phone, code, Some(user.user_id), now_ms()).await?;
    let status = match &outcome {
        dropcheck_core::linking::VerifyOutcome::Locked => Some(StatusCode::TOO_MANY_REQUESTS),
        dropcheck_core::linking::VerifyOutcome::Expired => Some(StatusCode::GONE),
        _ => None,
    };
    match outcome.into_result() {
        Ok(_) => {
            tracing::info!(user_id = user.user_id.get(), "phone linked through the API");
            Ok(Json(json!({ "success": true, "phone": phone.as_str(), "verified": true })))
        }
        Err(e) => {
            let mut err = ApiError::from(e);
            if let Some(s) = status {
                err = err.with_status(s);
            }
            Err(err)
        }
    }
}

/// `POST /api/integrations/whatsapp/unlink` `{phone}`.
async fn unlink(State(st): State<AppState>, acting: Acting, body: Result<Json<LinkBody>, JsonRejection>) -> ApiResult<Json<Value>> {
    let Json(body) = body?;
    let user = acting.user(&st, body.user.as_deref()).await?;
    let phone = Phone::parse(&body.phone)?;
    if !st.store.unlink_phone(user.user_id, Some(&phone)).await? {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "not_linked", format!("{} is not linked to this account", phone.as_str())));
    }
    tracing::info!(user_id = user.user_id.get(), "phone unlinked");
    Ok(Json(json!({ "success": true, "phone": phone.as_str(), "unlinked": true })))
}

/// `GET /api/integrations/whatsapp/webhook`: the predecessor's health check.
async fn webhook_health(State(st): State<AppState>) -> Json<Value> {
    Json(json!({ "status": "ok", "service": "whatsapp-webhook", "provider": st.settings.integrations.active() }))
}
