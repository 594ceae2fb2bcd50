//! Server-only glue for the server functions: the shared state, the signed-in user from the
//! session, and mapping core errors to user-safe messages.

use axum::extract::FromRef;
use dropcheck_core::domain::Role;
use dropcheck_core::media::MediaStore;
use dropcheck_core::store::{ActorRef, Store, User};
use dropcheck_core::{now_ms, CoreError};
use leptos::prelude::*;
use std::sync::Arc;
use tower_sessions::Session;

/// Everything a request handler or server function needs. Leptos provides it as context.
#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub store: Store,
    pub media: MediaStore,
    pub settings: Arc<Settings>,
}

/// Runtime settings the web layers need (the server crate builds them from the environment).
pub struct Settings {
    /// The accepted bootstrap API key (`BRIDGE_API_KEY`); never logged or shown.
    pub bridge_api_key: Option<String>,
    /// `https://…` or `http://…`, the origin browsers and providers use.
    pub public_url: String,
    pub started_at: std::time::Instant,
    /// The WhatsApp provider's settings (the server crate owns the provider clients).
    pub integrations: Arc<dyn ProviderSettings>,
}

pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// Settings → Integrations as the server implements it: the active provider, its settings
/// (secrets never leave as more than "set · …abcd"), saving them, and a test send.
pub trait ProviderSettings: Send + Sync {
    /// The provider in effect: `sandbox`, `twilio` or `meta`.
    fn active(&self) -> &'static str;
    fn panel(&self) -> BoxFuture<'_, Result<crate::integrations::ProviderPanel, CoreError>>;
    /// Chooses the provider and sets the named settings (`""` removes a stored value; a blank
    /// secret keeps the stored one). Nothing is saved unless the result is usable.
    fn save<'a>(&'a self, provider: Option<String>, values: Vec<(String, String)>, by: &'a User) -> BoxFuture<'a, Result<(), CoreError>>;
    /// Sends a test message through the active provider now and reports what happened.
    fn send_test<'a>(&'a self, phone: String, by: &'a User) -> BoxFuture<'a, Result<crate::integrations::TestSend, CoreError>>;
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("bridge_api_key", &self.bridge_api_key.as_ref().map(|_| "[set]"))
            .field("public_url", &self.public_url)
            .finish()
    }
}

/// Session keys, in one place.
pub const SESSION_USER_ID: &str = "user_id";
pub const SESSION_LOGIN_AT: &str = "login_at";
/// Sessions end 12 hours after sign-in whatever the activity (the idle timeout is the cookie expiry).
pub const ABSOLUTE_TIMEOUT_MS: i64 = 12 * 3600 * 1000;

/// The user signed in on this session, if any (and if the session is within its absolute timeout).
pub async fn session_user(session: &Session, store: &Store) -> Result<Option<User>, CoreError> {
    let uid: Option<i64> = session.get(SESSION_USER_ID).await.map_err(|e| CoreError::Internal(e.to_string()))?;
    let login_at: Option<i64> = session.get(SESSION_LOGIN_AT).await.map_err(|e| CoreError::Internal(e.to_string()))?;
    let (Some(uid), Some(login_at)) = (uid, login_at) else { return Ok(None) };
    if now_ms() - login_at > ABSOLUTE_TIMEOUT_MS {
        session.flush().await.map_err(|e| CoreError::Internal(e.to_string()))?;
        return Ok(None);
    }
    match store.user(uid).await {
        Ok(u) => Ok(Some(u)),
        Err(CoreError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

pub fn state() -> Result<AppState, ServerFnError> {
    use_context::<AppState>().ok_or_else(|| ServerFnError::new("server state missing"))
}

/// The user the sign-in gate (server middleware) found for this request, passed on in the
/// request's extensions so that it is looked up once per request.
#[derive(Clone, Debug)]
pub struct SignedIn(pub User);

/// The user the gate put on this request, if it did.
pub fn signed_in() -> Option<User> {
    use_context::<axum::http::request::Parts>().and_then(|p| p.extensions.get::<SignedIn>().map(|s| s.0.clone()))
}

/// The signed-in user, or an error that tells the browser to sign in.
pub async fn require_user() -> Result<(AppState, User), ServerFnError> {
    let st = state()?;
    if let Some(u) = signed_in() {
        return Ok((st, u));
    }
    let session: Session = leptos_axum::extract().await.map_err(|_| ServerFnError::new("no session"))?;
    match session_user(&session, &st.store).await.map_err(fail)? {
        Some(u) => Ok((st, u)),
        None => Err(ServerFnError::new("Your session has ended; sign in again.")),
    }
}

pub async fn require_admin() -> Result<(AppState, User), ServerFnError> {
    let (st, u) = require_user().await?;
    if u.role() != Role::Admin {
        return Err(ServerFnError::new("Only admins can do that."));
    }
    Ok((st, u))
}

pub fn actor(u: &User) -> ActorRef {
    ActorRef::user(u)
}

/// A core error as the user sees it; internal causes are logged, not shown.
pub fn fail(e: CoreError) -> ServerFnError {
    if e.is_internal() {
        tracing::error!(error = ?e, "server function failed");
    } else {
        tracing::info!(code = e.code(), "request refused: {e}");
    }
    ServerFnError::new(e.public_message())
}
