//! Sends outbound event webhooks (`dropcheck_core::webhooks`): claims due deliveries with a
//! lease (several replicas side by side), refuses private addresses unless allowed, signs
//! each attempt afresh (`webhook-id` stays the message's), follows no redirects, and logs
//! every attempt with its status, duration and the start of the answer.

use dropcheck_core::store::{Attempt, ClaimedDelivery, Store};
use dropcheck_core::webhooks::{self as wh, Verdict};
use dropcheck_core::{now_ms, CoreError};
use futures_util::StreamExt;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Deliveries sent at once per server.
const CONCURRENCY: usize = 8;
/// How long one attempt may take (the specification suggests 15–30 s).
const TIMEOUT: Duration = Duration::from_secs(15);

pub struct WebhookSender {
    client: reqwest::Client,
    /// `DROPCHECK_WEBHOOK_ALLOW_PRIVATE`: loopback, private and link-local addresses (tests,
    /// intranets) and plain http.
    pub allow_private: bool,
    /// The delays between attempts (Svix's schedule; tests shorten it).
    pub schedule: Vec<i64>,
    pub lease_ms: i64,
    pub wake: Notify,
}

impl WebhookSender {
    pub fn new(allow_private: bool, schedule: Vec<i64>, lease_ms: i64) -> Self {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT)
            .user_agent(concat!("Dropcheck-Webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("a reqwest client with rustls");
        Self { client, allow_private, schedule, lease_ms, wake: Notify::new() }
    }
}

/// Sends one batch of due deliveries; whether there were any.
pub async fn webhooks_once(store: &Store, s: &WebhookSender) -> Result<bool, CoreError> {
    let claimed = store.claim_webhook_deliveries(now_ms(), s.lease_ms, 32).await?;
    if claimed.is_empty() {
        return Ok(false);
    }
    let results: Vec<Result<(), CoreError>> =
        futures_util::stream::iter(claimed).map(|d| deliver(store, s, d)).buffer_unordered(CONCURRENCY).collect().await;
    for r in results {
        r?;
    }
    Ok(true)
}

async fn deliver(store: &Store, s: &WebhookSender, d: ClaimedDelivery) -> Result<(), CoreError> {
    let started_at = now_ms();
    let clock = Instant::now();
    let (status, retry_after, abort, error, excerpt) = match attempt(s, &d).await {
        Ok((status, retry_after, abort, excerpt)) => (Some(status), retry_after, abort, None, Some(excerpt)),
        Err(e) => (None, None, false, Some(e), None),
    };
    let a = Attempt { started_at, status_code: status, duration_ms: clock.elapsed().as_millis() as i64, error, excerpt };
    // A refused address is not worth retrying on the schedule: it will be refused again.
    let verdict = if a.error.as_deref().is_some_and(|e| e.starts_with("refused:")) {
        Verdict::GiveUp("the endpoint's address is private (DROPCHECK_WEBHOOK_ALLOW_PRIVATE is off)")
    } else {
        wh::judge(status, retry_after, abort, d.attempts, now_ms(), &s.schedule)
    };
    match &verdict {
        Verdict::Succeeded => tracing::info!(delivery = d.delivery_id, webhook_id = %d.message_id, status = ?status, "webhook delivered"),
        v => {
            tracing::warn!(delivery = d.delivery_id, webhook_id = %d.message_id, status = ?status, error = ?a.error, verdict = ?v, "webhook attempt failed")
        }
    }
    if let Some(url) = store.record_webhook_attempt(&d, &a, &verdict, now_ms()).await? {
        tracing::error!(endpoint = d.endpoint_id, url = %url, "webhook endpoint disabled");
    }
    Ok(())
}

/// One signed POST: the answer's status, `Retry-After` (ms), whether it asked to stop, and
/// the first 500 characters of its body; or why there was no answer.
async fn attempt(s: &WebhookSender, d: &ClaimedDelivery) -> Result<(u16, Option<i64>, bool, String), String> {
    let url = wh::check_url(&d.url, s.allow_private).map_err(|e| format!("refused: {}", e.message))?;
    if !s.allow_private {
        let host = url.host_str().unwrap_or_default().to_string();
        let port = url.port_or_known_default().unwrap_or(443);
        let addrs: Vec<std::net::SocketAddr> =
            tokio::net::lookup_host((host.as_str(), port)).await.map_err(|e| format!("cannot resolve {host}: {e}"))?.collect();
        if addrs.is_empty() || addrs.iter().any(|a| wh::refused_address(a.ip())) {
            return Err(format!("refused: {host} resolves to a private, loopback or link-local address"));
        }
    }
    let ts = now_ms() / 1000;
    let signature = wh::signature_header(&d.secrets, &d.message_id, ts, &d.body);
    let res = s
        .client
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", &d.message_id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", signature)
        .body(d.body.clone())
        .send()
        .await
        .map_err(|e| if e.is_timeout() { format!("no answer within {}s", TIMEOUT.as_secs()) } else { format!("no answer: {e}") })?;
    let status = res.status().as_u16();
    let retry_after =
        res.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<i64>().ok()).map(|s| s * 1000);
    let abort =
        res.headers().get("webhook-delivery").and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case("abort-message"));
    let body = res.text().await.unwrap_or_default();
    Ok((status, retry_after, abort, body.chars().take(500).collect()))
}
