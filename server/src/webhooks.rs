//! Provider webhooks (Twilio inbound and status callbacks, Meta events): verify the signature, commit the raw request and
//! its events, and only then answer 200. Processing happens after, from the stored events
//! (see [`crate::workers`]).
//!
//! - Bad or missing signature: 403, nothing stored.
//! - Good signature but a body we cannot parse: stored as a rejected receipt, 400.
//! - A redelivery: stored as a receipt, its events are duplicates with no second effect.

use crate::config::ProviderConfig;
use crate::group_commit::{GroupCommit, WriteError};
use crate::routes::Routes;
use crate::workers::Messaging;
use app::ssr::AppState;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, OriginalUri, Query};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Extension;
use dropcheck_core::inbox::{ReceiptOutcome, WebhookIn};
use dropcheck_core::providers::{self, Provider, WebhookEvent};
use dropcheck_core::store::Store;
use dropcheck_core::{now_ms, InputError};
use std::collections::HashMap;
use std::sync::Arc;

/// Meta sends payloads up to 3 MB; Twilio's forms are small.
const WEBHOOK_BODY_LIMIT: usize = 4 * 1024 * 1024;

/// The most requests one group commit takes.
const GROUP_COMMIT_MAX: usize = 256;

pub fn router(messaging: Arc<Messaging>, store: Store) -> Routes<AppState> {
    Routes::new()
        .route("/webhooks/twilio", post(twilio_inbound))
        .route("/webhooks/twilio/status", post(twilio_status))
        .route("/webhooks/meta", post(meta_event).get(meta_verify))
        .map(|r| {
            r.layer(DefaultBodyLimit::max(WEBHOOK_BODY_LIMIT))
                .layer(Extension(Arc::new(Ingest::start(store))))
                .layer(Extension(messaging.clone()))
                .layer(axum::middleware::from_fn_with_state(messaging, crate::metrics::count_webhooks))
        })
}

/// How long a webhook waits for its receipt to be committed before it is answered 503 with
/// `Retry-After` (writes arriving faster than they can be committed).
pub const INGEST_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Verified webhook requests are stored through one group-committing writer: a request is
/// answered only after its own commit, but requests arriving together share it.
pub struct Ingest(GroupCommit<WebhookIn, ReceiptOutcome>);

impl Ingest {
    pub fn start(store: Store) -> Self {
        Self(GroupCommit::start(GROUP_COMMIT_MAX, store.writers(), move |items: Vec<WebhookIn>| {
            let store = store.clone();
            async move {
                match store.record_webhooks(&items).await {
                    Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
                    // One bad request must not fail its neighbours: store them one by one.
                    Err(e) if items.len() > 1 => {
                        tracing::warn!(error = ?e, batch = items.len(), "group commit failed; storing the webhooks one by one");
                        let mut out = Vec::with_capacity(items.len());
                        for w in &items {
                            out.push(
                                store.record_webhooks(std::slice::from_ref(w)).await.map(|mut v| v.remove(0)).map_err(|e| format!("{e:?}")),
                            );
                        }
                        out
                    }
                    Err(e) => vec![Err(format!("{e:?}"))],
                }
            }
        }))
    }

    async fn record(&self, w: WebhookIn) -> Result<ReceiptOutcome, WriteError> {
        self.0.write_within(w, INGEST_WAIT).await
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
}

/// The empty TwiML Twilio expects from a messaging webhook (replies go out through the queue).
fn twiml_ok() -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/xml")], "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response></Response>")
        .into_response()
}

async fn twilio_inbound(
    i: Extension<Arc<Ingest>>,
    m: Extension<Arc<Messaging>>,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    twilio(i, m, uri, headers, body, providers::parse_twilio_inbound).await
}

async fn twilio_status(
    i: Extension<Arc<Ingest>>,
    m: Extension<Arc<Messaging>>,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    twilio(i, m, uri, headers, body, providers::parse_twilio_status).await
}

async fn twilio(
    Extension(ingest): Extension<Arc<Ingest>>,
    Extension(m): Extension<Arc<Messaging>>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
    parse: fn(&[(String, String)]) -> Result<WebhookEvent, InputError>,
) -> Response {
    // The sandbox speaks Twilio's format, signed with its own token, so it takes this path too.
    let active = m.provider();
    let (token, provider) = match &*active {
        ProviderConfig::Twilio { auth_token, .. } => (auth_token.as_str(), Provider::Twilio),
        ProviderConfig::Sandbox { signing_token } => (signing_token.as_str(), Provider::Sandbox),
        ProviderConfig::Meta { .. } => {
            return plain(StatusCode::NOT_FOUND, "Twilio webhooks are not enabled: the active provider is Meta.")
        }
    };
    let Some(signature) = headers.get("x-twilio-signature").and_then(|v| v.to_str().ok()) else {
        tracing::warn!(path = %uri.path(), "Twilio webhook without a signature refused");
        m.note_refused(provider, "no X-Twilio-Signature header");
        return plain(StatusCode::FORBIDDEN, "Missing X-Twilio-Signature.");
    };
    let path_and_query = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let url = format!("{}{}", m.public_url, path_and_query);
    let is_json = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|c| c.starts_with("application/json"));
    let params = if is_json { vec![] } else { providers::parse_form(&body) };
    if !providers::verify_twilio(token, &url, &params, Some(&body), signature) {
        tracing::warn!(path = %uri.path(), "Twilio webhook with a bad signature refused");
        m.note_refused(provider, "X-Twilio-Signature did not match (check the auth token and DROPCHECK_PUBLIC_URL)");
        return plain(StatusCode::FORBIDDEN, "Twilio request validation failed.");
    }
    let parsed = if is_json {
        Err(InputError::new("invalid_webhook", "JSON bodies are not a Twilio messaging webhook"))
    } else {
        parse(&params).map(|e| vec![e])
    };
    store_and_answer(&ingest, &m, provider, uri.path(), &headers, &body, parsed, twiml_ok).await
}

#[allow(clippy::too_many_arguments)]
async fn store_and_answer(
    ingest: &Ingest,
    m: &Messaging,
    provider: Provider,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
    parsed: Result<Vec<WebhookEvent>, InputError>,
    ok: fn() -> Response,
) -> Response {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    // Text from outside never carries NUL into the database (PostgreSQL refuses it): the
    // receipt shows one as U+FFFD, the events lose it.
    let mut raw = String::from_utf8_lossy(body).into_owned();
    if raw.contains('\0') {
        raw = raw.replace('\0', "\u{FFFD}");
    }
    let w = WebhookIn {
        provider,
        path: path.to_string(),
        content_type: content_type.to_string(),
        body: raw,
        parsed: parsed.map(|evs| evs.into_iter().map(WebhookEvent::without_nul).collect()),
        received_at: now_ms(),
    };
    let parsed = w.parsed.as_ref().map(|_| ()).map_err(|e| e.message.clone());
    match ingest.record(w).await {
        Ok(outcome) => match parsed {
            Ok(_) => {
                tracing::info!(
                    provider = provider.as_str(),
                    receipt = outcome.receipt_id.get(),
                    new = outcome.new_events,
                    duplicates = outcome.duplicates,
                    "webhook stored"
                );
                if outcome.new_events > 0 {
                    m.wake_inbox.notify_one();
                }
                ok()
            }
            Err(e) => {
                tracing::warn!(provider = provider.as_str(), receipt = outcome.receipt_id.get(), error = %e, "malformed webhook kept as rejected");
                (StatusCode::BAD_REQUEST, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], format!("Malformed webhook: {e}"))
                    .into_response()
            }
        },
        Err(WriteError::Overloaded) => {
            // Not known to be committed: the provider delivers it again (a copy that did commit
            // meanwhile is deduplicated).
            tracing::warn!(
                provider = provider.as_str(),
                wait_ms = INGEST_WAIT.as_millis() as u64,
                "webhook not stored in time: overloaded"
            );
            let mut r = plain(StatusCode::SERVICE_UNAVAILABLE, "Busy: the event was not stored in time; please retry.");
            r.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            r
        }
        Err(WriteError::Failed(e)) => {
            // Not committed: the provider must deliver it again.
            tracing::error!(error = %e, provider = provider.as_str(), "webhook could not be stored");
            plain(StatusCode::SERVICE_UNAVAILABLE, "Temporarily unable to store the event; please retry.")
        }
    }
}

async fn meta_event(
    Extension(ingest): Extension<Arc<Ingest>>,
    Extension(m): Extension<Arc<Messaging>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let active = m.provider();
    let ProviderConfig::Meta { app_secret, .. } = &*active else {
        return plain(StatusCode::NOT_FOUND, "Meta webhooks are not enabled: the active provider is not Meta.");
    };
    let signature = headers.get("x-hub-signature-256").and_then(|v| v.to_str().ok()).unwrap_or("");
    if !providers::verify_meta(app_secret, &body, signature) {
        tracing::warn!("Meta webhook with a missing or bad signature refused");
        m.note_refused(Provider::Meta, "X-Hub-Signature-256 missing or not matching (check the app secret)");
        return plain(StatusCode::FORBIDDEN, "X-Hub-Signature-256 does not match.");
    }
    let parsed = providers::parse_meta(&body);
    store_and_answer(&ingest, &m, Provider::Meta, "/webhooks/meta", &headers, &body, parsed, || plain(StatusCode::OK, "EVENT_RECEIVED"))
        .await
}

/// Meta's subscription handshake: echo `hub.challenge` when the verify token matches.
async fn meta_verify(Extension(m): Extension<Arc<Messaging>>, Query(q): Query<HashMap<String, String>>) -> Response {
    let active = m.provider();
    let ProviderConfig::Meta { verify_token, .. } = &*active else {
        return plain(StatusCode::NOT_FOUND, "Meta webhooks are not enabled: the active provider is not Meta.");
    };
    let mode = q.get("hub.mode").map(String::as_str);
    let token = q.get("hub.verify_token").map(String::as_str).unwrap_or("");
    match (mode, q.get("hub.challenge")) {
        (Some("subscribe"), Some(challenge)) if dropcheck_core::auth::secret_eq(token, verify_token) => {
            tracing::info!("Meta webhook subscription verified");
            (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], challenge.clone()).into_response()
        }
        _ => {
            tracing::warn!("Meta webhook verification refused");
            m.note_refused(Provider::Meta, "the subscription handshake's hub.verify_token did not match");
            plain(StatusCode::FORBIDDEN, "Verification failed.")
        }
    }
}
