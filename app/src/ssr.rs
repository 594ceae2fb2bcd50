//! Server-only glue for the server functions: the shared state, the signed-in user from the
//! session, and mapping core errors to user-safe messages.

use axum::extract::FromRef;
use dropcheck_core::domain::Role;
/// Row ids, for the server functions that read one from a form or a URL.
pub use dropcheck_core::ids::*;
use dropcheck_core::media::MediaStore;
use dropcheck_core::store::{ActorRef, Store, User};
use dropcheck_core::{now_ms, CoreError};
use leptos::prelude::*;

use crate::ui::AppError;
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
    /// Proxies whose `X-Forwarded-For` is believed (`DROPCHECK_TRUSTED_PROXY`).
    pub trusted_proxies: TrustedProxies,
    /// Live updates for open pages.
    pub live: Arc<LiveHub>,
    /// Webhook endpoints may be private addresses (`DROPCHECK_WEBHOOK_ALLOW_PRIVATE`).
    pub webhook_allow_private: bool,
}

/// The reverse proxies in front of the server (`DROPCHECK_TRUSTED_PROXY`: addresses or CIDR
/// ranges, comma-separated). Only a request from one of them has its client address taken
/// from `X-Forwarded-For`, read from the right and skipping the trusted hops, so a client
/// cannot name its own address; with none configured the peer's address is the client's.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<(std::net::IpAddr, u8)>);

impl TrustedProxies {
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut out = vec![];
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (ip, bits) = match item.split_once('/') {
                Some((ip, bits)) => (ip, Some(bits)),
                None => (item, None),
            };
            let ip: std::net::IpAddr = ip.parse().map_err(|_| format!("'{item}' is not an IP address or CIDR range"))?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let bits = match bits {
                Some(b) => b.parse::<u8>().ok().filter(|b| *b <= max).ok_or_else(|| format!("'{item}' has a bad prefix length"))?,
                None => max,
            };
            out.push((ip, bits));
        }
        Ok(Self(out))
    }

    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr;
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        self.0.iter().any(|(net, bits)| match (net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = if *bits == 0 { 0 } else { u32::MAX << (32 - *bits as u32) };
                u32::from(*n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = if *bits == 0 { 0 } else { u128::MAX << (128 - *bits as u32) };
                u128::from(*n) & mask == u128::from(a) & mask
            }
            _ => false,
        })
    }

    /// The client's address for a request from `peer` with these headers.
    pub fn client_ip(&self, peer: std::net::IpAddr, headers: &axum::http::HeaderMap) -> std::net::IpAddr {
        if !self.contains(peer) {
            return peer;
        }
        let hops: Vec<std::net::IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|h| h.trim().parse().ok())
            .collect();
        hops.iter().rev().copied().find(|h| !self.contains(*h)).or_else(|| hops.first().copied()).unwrap_or(peer)
    }
}

pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// Settings → Integrations as the server implements it: the active provider, its settings
/// (secrets never leave as more than "set · …abcd"), saving them, and a test send.
pub trait ProviderSettings: Send + Sync {
    /// The provider in effect: `sandbox`, `twilio` or `meta`.
    fn active(&self) -> &'static str;
    fn panel(&self) -> BoxFuture<'_, Result<dropcheck_core::integrations::ProviderStatus, CoreError>>;
    /// Chooses the provider and sets the named settings (`""` removes a stored value; a blank
    /// secret keeps the stored one). Nothing is saved unless the result is usable.
    fn save<'a>(&'a self, provider: Option<String>, values: Vec<(String, String)>, by: &'a User) -> BoxFuture<'a, Result<(), CoreError>>;
    /// Sends a test message through the active provider now and reports what happened.
    fn send_test<'a>(
        &'a self,
        phone: String,
        by: &'a User,
    ) -> BoxFuture<'a, Result<dropcheck_core::integrations::TestSendOutcome, CoreError>>;
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
    match store.user(UserId(uid)).await {
        Ok(u) => Ok(Some(u)),
        Err(CoreError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

pub fn state() -> Result<AppState, AppError> {
    use_context::<AppState>().ok_or_else(|| fail(CoreError::Internal("server state missing".into())))
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
pub async fn require_user() -> Result<(AppState, User), AppError> {
    let st = state()?;
    if let Some(u) = signed_in() {
        return Ok((st, u));
    }
    let session: Session = leptos_axum::extract().await.map_err(crate::ssr::session_failed)?;
    match session_user(&session, &st.store).await.map_err(fail)? {
        Some(u) => Ok((st, u)),
        None => Err(fail(CoreError::Unauthenticated { code: "session_ended", message: "Your session has ended; sign in again.".into() })),
    }
}

pub async fn require_admin() -> Result<(AppState, User), AppError> {
    let (st, u) = require_user().await?;
    if u.role() != Role::Admin {
        return Err(fail(CoreError::Forbidden("Only admins can do that.".into())));
    }
    Ok((st, u))
}

pub fn actor(u: &User) -> ActorRef {
    ActorRef::user(u)
}

/// A refusal of bad input (422 with `code`), as [`fail`] answers it.
pub fn refuse(code: &'static str, message: &str) -> AppError {
    fail(dropcheck_core::InputError::new(code, message).into())
}

/// A core error as the user sees it; internal causes are logged, not shown. The answer
/// carries the error's status (4xx for a refusal, 500 only for our own failures) and its
/// stable code in `X-Dropcheck-Error`, except for a plain form post from a page without
/// JavaScript, which Leptos answers with a redirect back to the form that shows the message.
pub fn fail(e: CoreError) -> AppError {
    use axum::http::{header, HeaderName, HeaderValue, StatusCode};
    if e.is_internal() {
        tracing::error!(error = ?e, "server function failed");
    } else {
        tracing::info!(code = e.code(), "request refused: {}", e.to_string().escape_debug());
    }
    let plain_form = use_context::<axum::http::request::Parts>().is_some_and(|p| {
        p.headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("text/html"))
            && p.headers.contains_key(header::REFERER)
    });
    if let Some(res) = use_context::<leptos_axum::ResponseOptions>() {
        if !plain_form {
            res.set_status(StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
        }
        res.insert_header(HeaderName::from_static("x-dropcheck-error"), HeaderValue::from_static(e.code()));
        if let CoreError::TooMany { retry_after_secs, .. } = &e {
            if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                res.insert_header(header::RETRY_AFTER, v);
            }
        }
    }
    AppError::new(e.code(), e.public_message())
}

/// The session store failed (or the request has no session layer): logged, and answered as
/// an internal error.
pub fn session_failed(e: impl std::fmt::Display) -> AppError {
    fail(CoreError::Internal(format!("session: {e}")))
}

/// The Content-Security-Policy of every page. With the request's nonce (Leptos pages: the
/// hydration script and streamed resources carry it), inline scripts run only by nonce;
/// without one (plain server pages, JSON, files) no inline script runs at all. WebAssembly
/// needs `'wasm-unsafe-eval'`; nothing may frame a page, load plugins or rebase URLs.
pub fn content_security_policy(nonce: Option<&str>) -> String {
    let script = match nonce {
        Some(n) => format!("script-src 'self' 'nonce-{n}' 'wasm-unsafe-eval'"),
        None => "script-src 'self' 'wasm-unsafe-eval'".to_string(),
    };
    format!(
        "default-src 'self'; {script}; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; \
         object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    )
}

/// Sets the page's Content-Security-Policy with this response's nonce (called by the shell
/// while it renders, so the header and the nonce in the page always agree).
pub fn set_page_csp() {
    use axum::http::{header, HeaderValue};
    let Some(res) = use_context::<leptos_axum::ResponseOptions>() else { return };
    let nonce = leptos::nonce::use_nonce();
    if let Ok(v) = HeaderValue::from_str(&content_security_policy(nonce.as_deref())) {
        res.insert_header(header::CONTENT_SECURITY_POLICY, v);
    }
}

/// Live updates for open pages (server-sent events, `/live/…`). One task per server asks the
/// database once a second whether anything a page shows changed ([`Store::change_fingerprint`])
/// — one query for all open pages together — and wakes the streams only then; each stream
/// then checks its own page's fingerprint. Streams belong to the session that opened them:
/// signing out ends them at once (on this server; other replicas notice within
/// [`LiveHub::SESSION_CHECK`]), and a user may hold at most [`LiveHub::MAX_PER_USER`].
pub struct LiveHub {
    store: Store,
    changes: tokio::sync::watch::Sender<u64>,
    ended: tokio::sync::broadcast::Sender<String>,
    open: std::sync::Mutex<std::collections::HashMap<UserId, usize>>,
    started: std::sync::Once,
}

/// A user's claim on one live stream; dropping it (the stream closed) gives it back.
pub struct LiveSlot {
    hub: Arc<LiveHub>,
    user_id: UserId,
}

impl Drop for LiveSlot {
    fn drop(&mut self) {
        let mut open = self.hub.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.user_id) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.user_id);
            }
        }
    }
}

impl LiveHub {
    pub const MAX_PER_USER: usize = 8;
    pub const SESSION_CHECK: std::time::Duration = std::time::Duration::from_secs(30);
    const POLL: std::time::Duration = std::time::Duration::from_secs(1);

    pub fn new(store: Store) -> Arc<Self> {
        Arc::new(Self {
            store,
            changes: tokio::sync::watch::channel(0).0,
            ended: tokio::sync::broadcast::channel(64).0,
            open: Default::default(),
            started: std::sync::Once::new(),
        })
    }

    /// Claims a stream for `user_id`, or `None` when the user already has the most allowed.
    pub fn claim(self: &Arc<Self>, user_id: UserId) -> Option<LiveSlot> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(user_id).or_insert(0);
        if *n >= Self::MAX_PER_USER {
            return None;
        }
        *n += 1;
        Some(LiveSlot { hub: self.clone(), user_id })
    }

    /// How many streams are open, over all users.
    pub fn open_streams(&self) -> usize {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).values().sum()
    }

    /// A receiver that sees a new value whenever something changed.
    pub fn subscribe(self: &Arc<Self>) -> tokio::sync::watch::Receiver<u64> {
        let hub = self.clone();
        self.started.call_once(move || {
            tokio::spawn(async move { hub.watch_database().await });
        });
        self.changes.subscribe()
    }

    /// Ended sessions (their ids), for the streams to close themselves.
    pub fn ended_sessions(&self) -> tokio::sync::broadcast::Receiver<String> {
        self.ended.subscribe()
    }

    /// Called at sign-out: this session's streams close.
    pub fn session_ended(&self, session_id: &str) {
        let _ = self.ended.send(session_id.to_string());
    }

    async fn watch_database(self: Arc<Self>) {
        let mut last: Option<String> = None;
        let mut tick = tokio::time::interval(Self::POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if self.changes.receiver_count() == 0 {
                last = None; // nobody is watching: ask nothing
                continue;
            }
            match self.store.change_fingerprint().await {
                Ok(now) if last.as_ref() != Some(&now) => {
                    // Also on the first look after streams opened: each stream compares with
                    // the fingerprint it opened with, so a change between a stream's opening
                    // and this look is not missed (it was, once inbound events were applied
                    // within the second).
                    self.changes.send_modify(|g| *g += 1);
                    last = Some(now);
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = ?e, "live updates: change check failed"),
            }
        }
    }
}
