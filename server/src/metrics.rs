//! `GET /metrics` (issue 15, item 5): the server's counters and the database's state in the
//! Prometheus exposition format, through `prometheus-client` (the Prometheus project's own Rust
//! client: its registry and encoder, no hand-written text format). Readable with an
//! admin-scoped API key on the main address, or without one on `DROPCHECK_METRICS_ADDR` (a
//! separate listener for a scraper on a private network).
//!
//! Counters are this process's (each replica is scraped on its own): webhook requests by
//! provider and outcome, signature refusals, sends by provider and result with the provider's
//! error code, and a histogram of the time from claiming an inbound event to committing it.
//! Gauges are read from the database at each scrape, so every replica reports the same: inbox
//! backlog and the age of its oldest event, outbound messages by status, photo checks by kind
//! and result, automation runs and webhook deliveries by status.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use dropcheck_core::store::Store;
use dropcheck_core::CoreError;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

/// The content type of the OpenMetrics text format, which Prometheus scrapes natively.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WebhookLabels {
    pub provider: String,
    /// `accepted` (2xx), `refused` (403: signature), `rejected` (another 4xx), `failed` (5xx).
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProviderLabel {
    pub provider: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SendLabels {
    pub provider: String,
    /// `sent`, `failed`, `throttled`, `deferred`.
    pub result: String,
    /// The provider's error code (empty when sent).
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabel {
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CheckLabels {
    pub kind: String,
    pub result: String,
}

pub struct Metrics {
    registry: Registry,
    pub webhook_requests: Family<WebhookLabels, Counter>,
    pub signature_refusals: Family<ProviderLabel, Counter>,
    pub sends: Family<SendLabels, Counter>,
    pub event_processing: Histogram,
    inbox_backlog: Gauge,
    inbox_oldest_age: Gauge<f64, AtomicU64>,
    outbox: Family<StatusLabel, Gauge>,
    photo_checks: Family<CheckLabels, Gauge>,
    automation_runs: Family<StatusLabel, Gauge>,
    webhook_deliveries: Family<StatusLabel, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("dropcheck");
        let webhook_requests = Family::<WebhookLabels, Counter>::default();
        registry.register("webhook_requests", "Provider webhook requests by provider and outcome", webhook_requests.clone());
        let signature_refusals = Family::<ProviderLabel, Counter>::default();
        registry.register("signature_refusals", "Webhook requests refused for their signature", signature_refusals.clone());
        let sends = Family::<SendLabels, Counter>::default();
        registry.register("sends", "Send attempts by provider, result and the provider's error code", sends.clone());
        // 5 ms … 41 s.
        let event_processing = Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(0.005, 2.0, 14));
        registry.register(
            "event_processing_seconds",
            "Time from claiming an inbound event to committing its result (media downloads included)",
            event_processing.clone(),
        );
        let inbox_backlog = Gauge::default();
        registry.register("inbox_backlog", "Inbound events waiting to be processed", inbox_backlog.clone());
        let inbox_oldest_age = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "inbox_oldest_pending_age_seconds",
            "Age of the oldest inbound event waiting (0: none)",
            inbox_oldest_age.clone(),
        );
        let outbox = Family::<StatusLabel, Gauge>::default();
        registry.register("outbox_messages", "Outbound messages by status", outbox.clone());
        let photo_checks = Family::<CheckLabels, Gauge>::default();
        registry.register("photo_checks", "Photo checks stored, by kind and result (flag = a flag raised)", photo_checks.clone());
        let automation_runs = Family::<StatusLabel, Gauge>::default();
        registry.register("automation_runs", "Automation runs by status", automation_runs.clone());
        let webhook_deliveries = Family::<StatusLabel, Gauge>::default();
        registry.register("webhook_deliveries", "Outbound event webhook deliveries by status", webhook_deliveries.clone());
        Self {
            registry,
            webhook_requests,
            signature_refusals,
            sends,
            event_processing,
            inbox_backlog,
            inbox_oldest_age,
            outbox,
            photo_checks,
            automation_runs,
            webhook_deliveries,
        }
    }
}

impl Metrics {
    pub fn webhook(&self, provider: &str, status: StatusCode) {
        let outcome = match status.as_u16() {
            200..=299 => "accepted",
            403 => "refused",
            400..=499 => "rejected",
            _ => "failed",
        };
        self.webhook_requests.get_or_create(&WebhookLabels { provider: provider.into(), outcome: outcome.into() }).inc();
    }

    pub fn refused(&self, provider: &str) {
        self.signature_refusals.get_or_create(&ProviderLabel { provider: provider.into() }).inc();
    }

    pub fn send(&self, provider: &str, result: &str, code: &str) {
        self.sends.get_or_create(&SendLabels { provider: provider.into(), result: result.into(), code: code.into() }).inc();
    }

    /// The exposition: the database's state read now, then everything encoded.
    pub async fn render(&self, store: &Store) -> Result<String, CoreError> {
        let ops = store.ops_counts().await?;
        let outbox = store.outbox_counts().await?;
        let now = dropcheck_core::now_ms();
        self.inbox_backlog.set(ops.inbox_pending);
        self.inbox_oldest_age.set(ops.inbox_oldest_pending_at.map_or(0.0, |at| (now - at).max(0) as f64 / 1000.0));
        for (status, n) in [
            ("queued", outbox.queued),
            ("sending", outbox.sending),
            ("sent", outbox.sent),
            ("delivered", outbox.delivered),
            ("read", outbox.read),
            ("failed", outbox.failed),
        ] {
            self.outbox.get_or_create(&StatusLabel { status: status.into() }).set(n);
        }
        for (kind, result, n) in ops.photo_checks {
            self.photo_checks.get_or_create(&CheckLabels { kind, result }).set(n);
        }
        for (status, n) in ops.automation_runs {
            self.automation_runs.get_or_create(&StatusLabel { status }).set(n);
        }
        for (status, n) in ops.webhook_deliveries {
            self.webhook_deliveries.get_or_create(&StatusLabel { status }).set(n);
        }
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .map_err(|e| CoreError::Internal(format!("encoding the metrics: {e}")))?;
        Ok(out)
    }

    /// The `/metrics` answer.
    pub async fn response(&self, store: &Store) -> Response {
        match self.render(store).await {
            Ok(text) => ([(header::CONTENT_TYPE, CONTENT_TYPE), (header::CACHE_CONTROL, "no-store")], text).into_response(),
            Err(e) => {
                tracing::error!(error = ?e, "metrics could not be read");
                (StatusCode::INTERNAL_SERVER_ERROR, "metrics unavailable; see the server log").into_response()
            }
        }
    }
}

/// Counts provider webhook requests by outcome (a layer on the webhook routes).
pub async fn count_webhooks(
    axum::extract::State(m): axum::extract::State<std::sync::Arc<crate::workers::Messaging>>,
    req: Request<Body>,
    next: Next,
) -> Response {
    // The sandbox posts Twilio's format to Twilio's path.
    let provider = if req.uri().path().starts_with("/webhooks/meta") {
        "meta"
    } else if m.provider().kind() == dropcheck_core::providers::Provider::Sandbox {
        "sandbox"
    } else {
        "twilio"
    };
    let res = next.run(req).await;
    m.metrics.webhook(provider, res.status());
    res
}

/// `GET /metrics` on the main address: an admin-scoped API key.
pub fn router(messaging: std::sync::Arc<crate::workers::Messaging>) -> crate::routes::Routes<app::ssr::AppState> {
    crate::routes::Routes::new().route("/metrics", axum::routing::get(scrape)).map(|r| r.layer(axum::Extension(messaging)))
}

async fn scrape(
    axum::extract::State(st): axum::extract::State<app::ssr::AppState>,
    axum::Extension(m): axum::Extension<std::sync::Arc<crate::workers::Messaging>>,
    caller: crate::api::ApiCaller,
) -> Result<Response, crate::api::ApiError> {
    caller.require("admin")?;
    Ok(m.metrics.response(&st.store).await)
}

/// The `DROPCHECK_METRICS_ADDR` listener's router: `/metrics` only, no key (bind it where only
/// the scraper reaches it).
pub fn open_router(store: Store, messaging: std::sync::Arc<crate::workers::Messaging>) -> axum::Router {
    axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let (store, m) = (store.clone(), messaging.clone());
            async move { m.metrics.response(&store).await }
        }),
    )
}
