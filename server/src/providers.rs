//! The provider adapters' I/O: sending a message and fetching inbound media over HTTP, for
//! Twilio and Meta (and the sandbox, which "sends" by recording). Verification and parsing
//! of webhooks are pure and live in `dropcheck_core::providers`; so does the table of which
//! provider error codes are worth retrying.

use crate::config::ProviderConfig;
pub use dropcheck_core::outbox::{Content, SendFailure};
use dropcheck_core::providers::{meta_retry, twilio_retry, DeliveryStatus, MediaRef, Retry};
use serde::Deserialize;
use std::time::Duration;

/// A provider accepted the message.
#[derive(Debug, Clone, PartialEq)]
pub struct Accepted {
    pub provider_id: String,
    pub status: DeliveryStatus,
}

/// The HTTP client every adapter shares: bounded timeouts, no redirects to elsewhere.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(20))
        .redirect(reqwest::redirect::Policy::limited(3))
        .user_agent(concat!("dropcheck/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("a TLS-capable HTTP client builds")
}

fn retry_after(h: &reqwest::header::HeaderMap) -> Option<Duration> {
    h.get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(|s| s.trim().parse::<u64>().ok()).map(Duration::from_secs)
}

#[derive(Deserialize)]
struct TwilioCreated {
    sid: String,
}

#[derive(Deserialize)]
struct TwilioError {
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    message: Option<String>,
}

#[derive(Deserialize)]
struct MetaSent {
    messages: Vec<MetaSentId>,
}
#[derive(Deserialize)]
struct MetaSentId {
    id: String,
}
#[derive(Deserialize)]
struct MetaErrorBody {
    error: MetaErrorInner,
}
#[derive(Deserialize)]
struct MetaErrorInner {
    code: i64,
    #[serde(default)]
    message: String,
    #[serde(default)]
    error_data: Option<MetaErrorData>,
}
#[derive(Deserialize)]
struct MetaErrorData {
    #[serde(default)]
    details: Option<String>,
}

/// Sends one message to `to` (E.164). `status_callback` is where Twilio reports ticks.
pub async fn send(
    client: &reqwest::Client,
    provider: &ProviderConfig,
    to: &str,
    content: &Content,
    status_callback: &str,
) -> Result<Accepted, SendFailure> {
    match provider {
        ProviderConfig::Sandbox { .. } => {
            // The simulator's phones read the outbox directly; the message is delivered.
            Ok(Accepted { provider_id: format!("SB{}", dropcheck_core::auth::random_token(16)), status: DeliveryStatus::Delivered })
        }
        ProviderConfig::Twilio { account_sid, auth_token, from, api_base } => {
            let url = format!("{api_base}/2010-04-01/Accounts/{account_sid}/Messages.json");
            let to = format!("whatsapp:{to}");
            let mut form: Vec<(&str, String)> = vec![("To", to), ("From", from.clone()), ("StatusCallback", status_callback.to_string())];
            match content {
                Content::Text { body, media_url } => {
                    form.push(("Body", body.to_string()));
                    if let Some(u) = media_url {
                        form.push(("MediaUrl", u.to_string()));
                    }
                }
                // Body and MediaUrl must be absent with a content template.
                Content::TwilioTemplate { content_sid, variables } => {
                    let vars: serde_json::Map<String, serde_json::Value> =
                        variables.iter().enumerate().map(|(i, v)| ((i + 1).to_string(), serde_json::Value::from(v.as_str()))).collect();
                    form.push(("ContentSid", content_sid.to_string()));
                    form.push(("ContentVariables", serde_json::Value::Object(vars).to_string()));
                }
                Content::MetaTemplate { .. } => return Err(wrong_template("Twilio", "a Meta template")),
            }
            let res = client.post(&url).basic_auth(account_sid, Some(auth_token)).form(&form).send().await.map_err(|e| {
                // A timeout after the request went out is ambiguous: Twilio may have sent it.
                SendFailure::transient("network", format!("Twilio did not answer: {}", without_url(&e)))
            })?;
            let status = res.status();
            let after = retry_after(res.headers());
            let text = res.text().await.unwrap_or_default();
            if status.is_success() {
                let created: TwilioCreated = serde_json::from_str(&text)
                    .map_err(|e| SendFailure::transient("bad_response", format!("Twilio's answer was not a message: {e}")))?;
                // Accepted by Twilio (its "queued"): "sent" from our side; callbacks move it on.
                return Ok(Accepted { provider_id: created.sid, status: DeliveryStatus::Sent });
            }
            let err: Option<TwilioError> = serde_json::from_str(&text).ok();
            let code = err.as_ref().and_then(|e| e.code);
            let message = err.and_then(|e| e.message).unwrap_or_else(|| format!("HTTP {status}"));
            let retry = match (status.as_u16(), code) {
                (429, _) => Retry::Yes,
                (s, _) if s >= 500 => Retry::Yes,
                (_, Some(c)) => twilio_retry(c),
                _ => Retry::No,
            };
            Err(SendFailure {
                retry,
                code: code.map(|c| c.to_string()).unwrap_or_else(|| format!("http_{}", status.as_u16())),
                message,
                retry_after: after,
            })
        }
        ProviderConfig::Meta { access_token, phone_number_id, api_base, api_version, .. } => {
            let url = format!("{api_base}/{api_version}/{phone_number_id}/messages");
            let mut payload = serde_json::json!({ "messaging_product": "whatsapp", "recipient_type": "individual", "to": to });
            match content {
                Content::Text { body, media_url: None } => {
                    payload["type"] = "text".into();
                    payload["text"] = serde_json::json!({ "preview_url": false, "body": body });
                }
                Content::Text { body, media_url: Some(link) } => {
                    let kind = meta_media_kind(link);
                    payload["type"] = kind.into();
                    payload[kind] = serde_json::json!({ "link": link, "caption": body });
                }
                Content::MetaTemplate { name, language, params } => {
                    let mut template = serde_json::json!({ "name": name, "language": { "code": language } });
                    if !params.is_empty() {
                        let parameters: Vec<serde_json::Value> =
                            params.iter().map(|p| serde_json::json!({ "type": "text", "text": p })).collect();
                        template["components"] = serde_json::json!([{ "type": "body", "parameters": parameters }]);
                    }
                    payload["type"] = "template".into();
                    payload["template"] = template;
                }
                Content::TwilioTemplate { .. } => return Err(wrong_template("Meta", "a Twilio content template")),
            }
            let res = client
                .post(&url)
                .bearer_auth(access_token)
                .json(&payload)
                .send()
                .await
                .map_err(|e| SendFailure::transient("network", format!("Meta did not answer: {}", without_url(&e))))?;
            let status = res.status();
            let after = retry_after(res.headers());
            let text = res.text().await.unwrap_or_default();
            if status.is_success() {
                let sent: MetaSent = serde_json::from_str(&text)
                    .map_err(|e| SendFailure::transient("bad_response", format!("Meta's answer was not a message: {e}")))?;
                let id = sent
                    .messages
                    .into_iter()
                    .next()
                    .map(|m| m.id)
                    .ok_or_else(|| SendFailure::transient("bad_response", "Meta returned no message id"))?;
                return Ok(Accepted { provider_id: id, status: DeliveryStatus::Sent });
            }
            match serde_json::from_str::<MetaErrorBody>(&text) {
                Ok(b) => {
                    let retry = if status.as_u16() == 429 || status.is_server_error() {
                        Retry::Yes.max_with(meta_retry(b.error.code))
                    } else {
                        meta_retry(b.error.code)
                    };
                    let message = b.error.error_data.and_then(|d| d.details).filter(|d| !d.is_empty()).unwrap_or(b.error.message);
                    Err(SendFailure { retry, code: b.error.code.to_string(), message, retry_after: after })
                }
                Err(_) => Err(SendFailure {
                    retry: if status.as_u16() == 429 || status.is_server_error() { Retry::Yes } else { Retry::No },
                    code: format!("http_{}", status.as_u16()),
                    message: format!("Meta answered HTTP {status}"),
                    retry_after: after,
                }),
            }
        }
    }
}

/// Meta sends pictures as `image` and anything else by link as a `document`.
fn meta_media_kind(link: &str) -> &'static str {
    let path = link.split(['?', '#']).next().unwrap_or(link).to_ascii_lowercase();
    if [".jpg", ".jpeg", ".png"].iter().any(|ext| path.ends_with(ext)) {
        "image"
    } else {
        "document"
    }
}

fn wrong_template(provider: &str, what: &str) -> SendFailure {
    SendFailure {
        retry: Retry::No,
        code: "template_mismatch".into(),
        message: format!("{provider} cannot send {what}; configure this template for {provider}"),
        retry_after: None,
    }
}

#[derive(Deserialize)]
struct TwilioList {
    #[serde(default)]
    messages: Vec<TwilioListed>,
}
#[derive(Deserialize)]
struct TwilioListed {
    sid: String,
    #[serde(default)]
    body: Option<String>,
}

/// Before retrying an ambiguous failure, looks for our own message among those recently sent
/// to `to` (Twilio: `GET …/Messages.json?To=…&DateSent>=…`). Returns its id if it was sent.
/// Providers that cannot list messages (Meta) return `None`: the retry goes ahead.
pub async fn find_already_sent(
    client: &reqwest::Client,
    provider: &ProviderConfig,
    to: &str,
    body: &str,
    since_ms: i64,
) -> Result<Option<String>, SendFailure> {
    let ProviderConfig::Twilio { account_sid, auth_token, api_base, .. } = provider else { return Ok(None) };
    let day = time::OffsetDateTime::from_unix_timestamp(since_ms / 1000)
        .map(|t| format!("{:04}-{:02}-{:02}", t.year(), t.month() as u8, t.day()))
        .unwrap_or_else(|_| "1970-01-01".into());
    let url = format!("{api_base}/2010-04-01/Accounts/{account_sid}/Messages.json");
    let to = format!("whatsapp:{to}");
    let res = client
        .get(&url)
        .basic_auth(account_sid, Some(auth_token))
        .query(&[("To", to.as_str()), ("DateSent>", day.as_str()), ("PageSize", "50")])
        .send()
        .await
        .map_err(|e| SendFailure::transient("network", format!("Twilio's message list did not answer: {}", without_url(&e))))?;
    if !res.status().is_success() {
        return Err(SendFailure::transient(format!("http_{}", res.status().as_u16()), "Twilio's message list failed; retrying later"));
    }
    let list: TwilioList = res.json().await.map_err(|e| SendFailure::transient("bad_response", format!("Twilio's message list: {e}")))?;
    Ok(list.messages.into_iter().find(|m| m.body.as_deref() == Some(body)).map(|m| m.sid))
}

trait RetryExt {
    fn max_with(self, other: Retry) -> Retry;
}
impl RetryExt for Retry {
    /// A 5xx/429 is transient unless the error code says the request can never work.
    fn max_with(self, other: Retry) -> Retry {
        match other {
            Retry::NeedsTemplate => Retry::NeedsTemplate,
            _ => self,
        }
    }
}

/// A reqwest error without the URL (which may carry an account id).
pub(crate) fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "the response broke off"
    } else {
        "request failed"
    };
    kind.to_string()
}

/// Why a media download failed.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchFailure {
    pub retryable: bool,
    pub message: String,
}

impl FetchFailure {
    fn transient(m: impl Into<String>) -> Self {
        Self { retryable: true, message: m.into() }
    }
    fn permanent(m: impl Into<String>) -> Self {
        Self { retryable: false, message: m.into() }
    }
}

/// Downloads an inbound message's media with the provider's credentials (Twilio: basic auth
/// on the media URL; Meta: media id → short-lived URL → bytes, both with the token), refusing
/// anything larger than `max_bytes`. Returns the bytes and the content type.
pub async fn fetch_media(
    client: &reqwest::Client,
    provider: &ProviderConfig,
    media: &MediaRef,
    max_bytes: u64,
) -> Result<(Vec<u8>, String), FetchFailure> {
    let req = match provider {
        ProviderConfig::Sandbox { .. } => {
            let url = media.url.as_deref().ok_or_else(|| FetchFailure::permanent("the media has no URL"))?;
            client.get(url)
        }
        ProviderConfig::Twilio { account_sid, auth_token, .. } => {
            let url = media.url.as_deref().ok_or_else(|| FetchFailure::permanent("the media has no URL"))?;
            client.get(url).basic_auth(account_sid, Some(auth_token))
        }
        ProviderConfig::Meta { access_token, api_base, api_version, phone_number_id, .. } => {
            let id = media.media_id.as_deref().ok_or_else(|| FetchFailure::permanent("the media has no id"))?;
            if !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.') {
                return Err(FetchFailure::permanent("the media id has unexpected characters"));
            }
            #[derive(Deserialize)]
            struct Info {
                url: String,
            }
            let info_url = format!("{api_base}/{api_version}/{id}?phone_number_id={phone_number_id}");
            let res = client
                .get(&info_url)
                .bearer_auth(access_token)
                .send()
                .await
                .map_err(|e| FetchFailure::transient(format!("media lookup: {}", without_url(&e))))?;
            if !res.status().is_success() {
                let s = res.status();
                return Err(if s.is_server_error() || s.as_u16() == 429 || s.as_u16() == 404 {
                    FetchFailure::transient(format!("media lookup answered HTTP {s}"))
                } else {
                    FetchFailure::permanent(format!("media lookup answered HTTP {s}"))
                });
            }
            let info: Info = res.json().await.map_err(|e| FetchFailure::transient(format!("media lookup: {e}")))?;
            client.get(info.url).bearer_auth(access_token)
        }
    };
    let mut res = req.send().await.map_err(|e| FetchFailure::transient(format!("media download: {}", without_url(&e))))?;
    let status = res.status();
    if !status.is_success() {
        return Err(if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 404 {
            FetchFailure::transient(format!("media download answered HTTP {status}"))
        } else {
            FetchFailure::permanent(format!("media download answered HTTP {status}"))
        });
    }
    if res.content_length().is_some_and(|n| n > max_bytes) {
        return Err(FetchFailure::permanent(format!("the file is larger than the {} MB limit", max_bytes / (1024 * 1024))));
    }
    let content_type = res
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.split(';').next().unwrap_or(s).trim().to_ascii_lowercase())
        .unwrap_or_else(|| media.content_type.clone());
    let mut bytes = Vec::new();
    while let Some(chunk) = res.chunk().await.map_err(|e| FetchFailure::transient(format!("media download: {}", without_url(&e))))? {
        if bytes.len() as u64 + chunk.len() as u64 > max_bytes {
            return Err(FetchFailure::permanent(format!("the file is larger than the {} MB limit", max_bytes / (1024 * 1024))));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok((bytes, content_type))
}
