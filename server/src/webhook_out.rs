//! Sends outbound event webhooks (`dropcheck_core::webhooks`): claims due deliveries with a
//! lease (several replicas side by side), refuses private addresses unless allowed, signs
//! each attempt afresh (`webhook-id` stays the message's), follows no redirects, and logs
//! every attempt with its status, duration and the start of the answer.
//!
//! The private-address rule is enforced where the connection is made: unless private
//! addresses are allowed, the client resolves names through [`PublicOnly`], which refuses a
//! name if any of its addresses is private, so the address checked is the address connected
//! to (a name that resolves to a public address for a check and to 127.0.0.1 a moment later —
//! DNS rebinding — cannot reach the inside).

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
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT)
            .user_agent(concat!("Dropcheck-Webhooks/", env!("CARGO_PKG_VERSION")));
        if !allow_private {
            builder = builder.dns_resolver(std::sync::Arc::new(PublicOnly));
        }
        let client = builder.build().expect("a reqwest client with rustls");
        Self { client, allow_private, schedule, lease_ms, wake: Notify::new() }
    }
}

/// The resolver of a client that may not reach private addresses: the system's answer for a
/// name, refused whole if any address in it is loopback, private or link-local.
pub struct PublicOnly;

/// Why [`PublicOnly`] refused a name (found again in the request's error chain).
#[derive(Debug)]
struct RefusedName(String);

impl std::fmt::Display for RefusedName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} resolves to a private, loopback or link-local address", self.0)
    }
}

impl std::error::Error for RefusedName {}

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if addrs.is_empty() || addrs.iter().any(|a| wh::refused_address(a.ip())) {
                return Err(Box::new(RefusedName(host)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The refusal of [`PublicOnly`] inside a request's error, if that is why it failed.
fn refused_name(e: &reqwest::Error) -> Option<String> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(r) = err.downcast_ref::<RefusedName>() {
            return Some(r.to_string());
        }
        source = err.source();
    }
    None
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
        .map_err(|e| match refused_name(&e) {
            Some(why) => format!("refused: {why}"),
            None if e.is_timeout() => format!("no answer within {}s", TIMEOUT.as_secs()),
            None => format!("no answer: {e}"),
        })?;
    let status = res.status().as_u16();
    let retry_after =
        res.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<i64>().ok()).map(|s| s * 1000);
    let abort =
        res.headers().get("webhook-delivery").and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case("abort-message"));
    let body = res.text().await.unwrap_or_default();
    Ok((status, retry_after, abort, body.chars().take(500).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::dns::Resolve;
    use std::str::FromStr;

    #[tokio::test]
    async fn the_resolver_refuses_a_name_with_a_private_address_and_the_request_says_so() {
        let refused = PublicOnly.resolve(reqwest::dns::Name::from_str("localhost").unwrap()).await;
        assert!(refused.is_err_and(|e| e.to_string().contains("localhost resolves to a private")));
        // Through a client, as the sender makes it: no connection is attempted, and the error
        // is recognised as a refusal (given up, not retried).
        let s = WebhookSender::new(false, vec![0], 1000);
        let e = s.client.post("https://localhost:9/hook").send().await.unwrap_err();
        assert_eq!(refused_name(&e).as_deref(), Some("localhost resolves to a private, loopback or link-local address"));
    }
}
