//! The vision worker: claims queued vision checks (one per photo filed while a vision model
//! is configured), puts each photo and its step to the model (`dropcheck_core::vision` builds
//! the request and reads the answer), and records the outcome. At most `concurrency` requests
//! are in flight per server, each bounded by `timeout`; 429 (honouring `Retry-After`), 5xx,
//! timeouts and refused connections are tried again with backoff, up to
//! [`MAX_ATTEMPTS`]; any other refusal of the request (401, 404, 400) ends the check at once
//! with its reason. It never touches a reply to the contractor: the inbox files and
//! acknowledges the photo first, the check comes after.

use crate::config::RetryPolicy;
use dropcheck_core::ids::PhotoId;
use dropcheck_core::media::MediaStore;
use dropcheck_core::store::{Store, VisionJob, VisionOutcome};
use dropcheck_core::vision::{self, excerpt, Reading, VisionConfig};
use dropcheck_core::{now_ms, CoreError};
use futures_util::StreamExt;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Attempts per photo before the check ends as failed.
pub const MAX_ATTEMPTS: i64 = 4;

/// The vision model in effect and how it is called.
pub struct Vision {
    config: RwLock<Option<Arc<VisionConfig>>>,
    client: reqwest::Client,
    /// Requests in flight at once (`DROPCHECK_VISION_CONCURRENCY`, default 2).
    pub concurrency: usize,
    /// How long one request may take (`DROPCHECK_VISION_TIMEOUT_SECONDS`, default 60).
    pub timeout: Duration,
    pub retry: RetryPolicy,
    pub lease_ms: i64,
    pub wake: Notify,
}

impl Vision {
    pub fn new(concurrency: usize, timeout: Duration, retry: RetryPolicy) -> Self {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::limited(3))
            .user_agent(concat!("dropcheck/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("a TLS-capable HTTP client builds");
        // A claim outlives the request it covers.
        let lease_ms = (timeout.as_millis() as i64).saturating_mul(2).max(30_000);
        Self { config: RwLock::new(None), client, concurrency: concurrency.max(1), timeout, retry, lease_ms, wake: Notify::new() }
    }

    pub fn config(&self) -> Option<Arc<VisionConfig>> {
        self.config.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The model to use from now on (`None`: the check is off); the store is told, so photos
    /// filed from now on get (or no longer get) a job.
    pub fn set_config(&self, store: &Store, c: Option<VisionConfig>) {
        store.set_vision_checks(c.is_some());
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = c.map(Arc::new);
        self.wake.notify_one();
    }
}

/// Checks one batch of due photos; whether there were any. With no model configured, queued
/// checks wait (they run once one is configured again).
pub async fn vision_once(store: &Store, media: &MediaStore, v: &Vision) -> Result<bool, CoreError> {
    let Some(config) = v.config() else { return Ok(false) };
    let jobs = store.claim_vision_jobs(now_ms(), v.lease_ms, v.concurrency as i64).await?;
    if jobs.is_empty() {
        return Ok(false);
    }
    let results: Vec<Result<(), CoreError>> = futures_util::stream::iter(jobs)
        .map(|job| {
            let config = config.clone();
            async move {
                let id = job.photo_id;
                let outcome = check_one(media, v, &config, &job).await;
                log(id, &outcome);
                store.finish_vision(id, &outcome, now_ms()).await
            }
        })
        .buffer_unordered(v.concurrency)
        .collect()
        .await;
    // A failure to record leaves the job leased; it is claimed again when the lease ends.
    results.into_iter().collect::<Result<Vec<()>, _>>()?;
    Ok(true)
}

fn log(id: PhotoId, outcome: &VisionOutcome) {
    match outcome {
        VisionOutcome::Answered { answer, model, latency_ms } => {
            tracing::info!(photo = id.get(), model = %model, latency_ms, retake = answer.retake(), "vision check answered")
        }
        VisionOutcome::NoAnswer { status, error, .. } => {
            tracing::warn!(photo = id.get(), status, error = %error, "vision check without an answer")
        }
        VisionOutcome::Retry { at, error } => {
            tracing::info!(photo = id.get(), wait_ms = at - now_ms(), error = %error, "vision check will be tried again")
        }
    }
}

/// One photo put to the model.
async fn check_one(media: &MediaStore, v: &Vision, config: &VisionConfig, job: &VisionJob) -> VisionOutcome {
    let model = config.model.clone();
    let failed = |error: String| VisionOutcome::NoAnswer { status: "failed", error, model: model.clone(), latency_ms: None };
    let bytes = match media.original_path(&job.sha256) {
        Ok(path) => match tokio::fs::read(&path).await {
            Ok(b) => b,
            Err(e) => return failed(format!("the photo's file cannot be read: {e}")),
        },
        Err(e) => return failed(e.message),
    };
    let jpeg = match tokio::task::spawn_blocking(move || vision::photo_for_model(&bytes)).await {
        Ok(Ok(j)) => j,
        Ok(Err(e)) => return failed(e.to_string()),
        Err(e) => return failed(format!("preparing the photo: {e}")),
    };
    let body = vision::request_body(&config.model, &job.question, &jpeg);
    let mut req = v.client.post(config.endpoint()).json(&body);
    if let Some(key) = &config.api_key {
        req = req.bearer_auth(key);
    }
    let started = Instant::now();
    let retry = |error: String, after: Option<Duration>| {
        if job.attempts >= MAX_ATTEMPTS {
            return failed(format!("{error} (after {} attempts)", job.attempts));
        }
        let wait = v.retry.delay_ms(job.attempts, after.map(|d| d.as_millis() as i64));
        VisionOutcome::Retry { at: now_ms() + wait, error }
    };
    let res = match req.send().await {
        Ok(r) => r,
        Err(e) if e.is_timeout() => return retry(format!("no answer within {} s", v.timeout.as_secs_f64()), None),
        Err(e) => return retry(format!("the vision endpoint could not be reached: {}", without_url(&e)), None),
    };
    let status = res.status();
    let after = res
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|h| h.to_str().ok())
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let text = match res.text().await {
        Ok(t) => t,
        Err(e) if e.is_timeout() => return retry(format!("no answer within {} s", v.timeout.as_secs_f64()), None),
        Err(e) => return retry(format!("reading the answer: {}", without_url(&e)), None),
    };
    let latency_ms = started.elapsed().as_millis() as i64;
    if status.as_u16() == 429 || status.is_server_error() {
        return retry(format!("HTTP {}: {}", status.as_u16(), excerpt(&text)), after);
    }
    if !status.is_success() {
        return failed(format!("HTTP {}: {}", status.as_u16(), excerpt(&text)));
    }
    match vision::read_response(&text, &job.question.values) {
        Reading::Answer(answer) => VisionOutcome::Answered { answer, model, latency_ms },
        Reading::Refused(why) => VisionOutcome::NoAnswer { status: "refused", error: why, model, latency_ms: Some(latency_ms) },
        Reading::Truncated => {
            VisionOutcome::NoAnswer { status: "truncated", error: "the answer was cut off".into(), model, latency_ms: Some(latency_ms) }
        }
        Reading::Unknown(why) => VisionOutcome::NoAnswer { status: "unknown", error: why, model, latency_ms: Some(latency_ms) },
    }
}

/// A transport error without its URL (the endpoint is an admin's setting; its query could
/// carry a key).
fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(url) = e.url() {
        s = s.replace(url.as_str(), "the endpoint");
    }
    s
}
