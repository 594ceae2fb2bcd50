//! Who is calling: the API key (and its scopes) or the signed-in session, and the
//! `Idempotency-Key` a caller may send.

use super::*;
use app::ssr::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;
use dropcheck_core::auth;
use dropcheck_core::domain::Role;
use dropcheck_core::lifecycle::Actor;
use dropcheck_core::store::ActorRef;

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
    pub(crate) fn actor(&self) -> ActorRef {
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
