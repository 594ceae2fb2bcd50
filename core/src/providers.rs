//! The WhatsApp providers' wire protocols, without I/O: verifying webhook signatures and
//! parsing webhook payloads into [`WebhookEvent`]s, for Twilio (and the sandbox, which speaks
//! Twilio's format) and Meta's WhatsApp Cloud API. Sending and media downloads live with the
//! HTTP client in the server crate; the error classification they use is here.
//!
//! Protocol facts: `PROTOCOLS.md` (shared docs) and the payloads in its `fixtures/`.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::InputError;

/// Which provider a webhook or a message belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Sandbox,
    Twilio,
    Meta,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Sandbox => "sandbox",
            Provider::Twilio => "twilio",
            Provider::Meta => "meta",
        }
    }
    pub fn parse(s: &str) -> Result<Self, InputError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "sandbox" | "" => Ok(Provider::Sandbox),
            "twilio" => Ok(Provider::Twilio),
            "meta" => Ok(Provider::Meta),
            other => Err(InputError::new("invalid_provider", format!("'{other}' is not a provider (sandbox, twilio, meta)"))),
        }
    }
}

// ------------------------------------------------------------------ events

/// One thing a webhook told us: a message from a contractor or a delivery status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum WebhookEvent {
    Message(InboundMessage),
    Status(StatusUpdate),
}

impl WebhookEvent {
    /// The key a redelivery shares with the original: the message id, or id + status.
    pub fn dedupe_key(&self) -> String {
        match self {
            WebhookEvent::Message(m) => format!("msg:{}", m.provider_id),
            WebhookEvent::Status(s) => format!("status:{}:{}", s.provider_id, s.status.as_str()),
        }
    }
    /// The number whose events must be handled in order.
    pub fn phone(&self) -> Option<&str> {
        match self {
            WebhookEvent::Message(m) => Some(&m.from),
            WebhookEvent::Status(s) => s.recipient.as_deref(),
        }
    }
    pub fn kind(&self) -> &'static str {
        match self {
            WebhookEvent::Message(_) => "message",
            WebhookEvent::Status(_) => "status",
        }
    }

    /// The event with NUL characters removed from every text (PostgreSQL cannot store
    /// them; a contractor's text loses nothing a person could see). Done after the
    /// signature check, which covers the bytes as sent.
    pub fn without_nul(self) -> Self {
        fn c(s: &mut String) {
            if s.contains('\0') {
                *s = s.replace('\0', "");
            }
        }
        fn co(s: &mut Option<String>) {
            if let Some(s) = s {
                c(s)
            }
        }
        let mut ev = self;
        match &mut ev {
            WebhookEvent::Message(m) => {
                c(&mut m.provider_id);
                c(&mut m.from);
                c(&mut m.profile_name);
                c(&mut m.body);
                if let MessageKind::Other(k) = &mut m.kind {
                    c(k);
                }
                for r in &mut m.media {
                    co(&mut r.url);
                    co(&mut r.media_id);
                    c(&mut r.content_type);
                    co(&mut r.sha256);
                }
            }
            WebhookEvent::Status(s) => {
                c(&mut s.provider_id);
                co(&mut s.recipient);
                co(&mut s.error_code);
                co(&mut s.error_text);
            }
        }
        ev
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboundMessage {
    /// `MessageSid` (Twilio) or `wamid…` (Meta).
    pub provider_id: String,
    /// The sender in E.164 (`+…`).
    pub from: String,
    pub profile_name: String,
    /// The text, or a media message's caption.
    pub body: String,
    pub kind: MessageKind,
    pub media: Vec<MediaRef>,
}

/// What kind of message arrived. Anything we do not handle is kept as `Other` with the
/// provider's type name, stored and answered with a hint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "name", rename_all = "lowercase")]
pub enum MessageKind {
    Text,
    Media,
    Other(String),
}

/// Where a message's media can be fetched: a URL (Twilio) or a media id (Meta).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MediaRef {
    pub url: Option<String>,
    pub media_id: Option<String>,
    pub content_type: String,
    pub sha256: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusUpdate {
    pub provider_id: String,
    pub status: DeliveryStatus,
    /// The recipient in E.164, when the provider says.
    pub recipient: Option<String>,
    pub error_code: Option<String>,
    pub error_text: Option<String>,
}

/// Delivery states of an outbound message, in the order they can only move forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    Queued,
    Sending,
    Sent,
    Delivered,
    Read,
    Undelivered,
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Queued => "queued",
            DeliveryStatus::Sending => "sending",
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Read => "read",
            DeliveryStatus::Undelivered => "undelivered",
            DeliveryStatus::Failed => "failed",
        }
    }

    /// Maps a provider's status word; statuses we do not track (`receiving`, `scheduled`,
    /// Meta's `played`…) map to the nearest one or to `None`.
    pub fn from_provider(s: &str) -> Option<Self> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "queued" | "accepted" | "scheduled" => DeliveryStatus::Queued,
            "sending" => DeliveryStatus::Sending,
            "sent" => DeliveryStatus::Sent,
            "delivered" => DeliveryStatus::Delivered,
            "read" | "played" => DeliveryStatus::Read,
            "undelivered" => DeliveryStatus::Undelivered,
            "failed" | "canceled" => DeliveryStatus::Failed,
            _ => return None,
        })
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::from_provider(s).filter(|d| d.as_str() == s)
    }

    fn rank(self) -> u8 {
        match self {
            DeliveryStatus::Queued => 0,
            DeliveryStatus::Sending => 1,
            DeliveryStatus::Sent => 2,
            DeliveryStatus::Delivered => 3,
            DeliveryStatus::Undelivered | DeliveryStatus::Failed => 3,
            DeliveryStatus::Read => 4,
        }
    }

    pub fn is_terminal_failure(self) -> bool {
        matches!(self, DeliveryStatus::Undelivered | DeliveryStatus::Failed)
    }

    /// Whether a callback reporting `next` may replace `self`: statuses only move forward
    /// (queued → sent → delivered → read), a failure is final, and callbacks arriving out
    /// of order never move a message back.
    pub fn may_become(self, next: DeliveryStatus) -> bool {
        !self.is_terminal_failure() && next.rank() > self.rank()
    }
}

// ------------------------------------------------------------------ Twilio

/// Parses an `application/x-www-form-urlencoded` body into its pairs (values decoded).
pub fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

type HmacSha1 = Hmac<Sha1>;
type HmacSha256 = Hmac<Sha256>;

fn twilio_digest(auth_token: &str, url: &str, params: &[(String, String)]) -> Vec<u8> {
    // Names sorted (case-sensitive, byte order); the values of a repeated name sorted and
    // de-duplicated, as Twilio's SDKs do.
    let mut pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    pairs.sort_unstable();
    pairs.dedup();
    let mut mac = HmacSha1::new_from_slice(auth_token.as_bytes()).expect("HMAC takes any key length");
    mac.update(url.as_bytes());
    for (k, v) in pairs {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    mac.finalize().into_bytes().to_vec()
}

/// The `X-Twilio-Signature` Twilio would send for `url` and `params` (used by the sandbox
/// to sign its simulated inbound messages, and by tests).
pub fn twilio_signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(twilio_digest(auth_token, url, params))
}

/// The URL variants Twilio may have signed for the URL we reconstructed: as is, without the
/// port, with the scheme's default port, and each with `'` in the query percent-encoded or
/// not (Twilio's SDKs accept the same set).
fn twilio_url_candidates(url: &str) -> Vec<String> {
    let mut out = vec![url.to_string()];
    if let Some(scheme_end) = url.find("://") {
        let scheme = &url[..scheme_end];
        let rest = &url[scheme_end + 3..];
        let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(auth_end);
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(i) => (&authority[..=i], &authority[i + 1..]),
            None => ("", authority),
        };
        // A port follows the last ':' unless that colon is inside an IPv6 literal.
        let (host, port) = match hostport.rfind(':') {
            Some(i) if !hostport[i..].contains(']') => (&hostport[..i], Some(&hostport[i + 1..])),
            _ => (hostport, None),
        };
        match port {
            Some(_) => out.push(format!("{scheme}://{userinfo}{host}{tail}")),
            None => {
                let default = if scheme.eq_ignore_ascii_case("https") { "443" } else { "80" };
                out.push(format!("{scheme}://{userinfo}{host}:{default}{tail}"));
            }
        }
    }
    let mut more = vec![];
    for u in &out {
        if let Some(q) = u.find('?') {
            let (base, query) = u.split_at(q);
            if query.contains('\'') {
                more.push(format!("{base}{}", query.replace('\'', "%27")));
            }
            if query.contains("%27") {
                more.push(format!("{base}{}", query.replace("%27", "'")));
            }
        }
    }
    out.extend(more);
    out
}

/// Verifies an `X-Twilio-Signature` for a request Twilio sent to `url` (the configured public
/// base URL + path + query, since behind a proxy the Host header is not what Twilio signed).
///
/// For form bodies the signature covers every POST parameter. For JSON bodies Twilio adds a
/// `bodySHA256` query parameter: the body's hex SHA-256 must match it, and the signature
/// covers the URL alone. Comparison is constant-time.
pub fn verify_twilio(auth_token: &str, url: &str, params: &[(String, String)], raw_body: Option<&[u8]>, signature: &str) -> bool {
    use base64::Engine;
    let Ok(given) = base64::engine::general_purpose::STANDARD.decode(signature.trim()) else { return false };
    let body_hash = url
        .split_once('?')
        .and_then(|(_, q)| form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "bodySHA256").map(|(_, v)| v.into_owned()));
    let params: &[(String, String)] = match (&body_hash, raw_body) {
        (Some(expected), Some(body)) => {
            let actual = hex::encode(Sha256::digest(body));
            if !bool::from(actual.as_bytes().ct_eq(expected.to_ascii_lowercase().as_bytes())) {
                return false;
            }
            &[]
        }
        (Some(_), None) => &[],
        (None, _) => params,
    };
    twilio_url_candidates(url).iter().any(|u| bool::from(twilio_digest(auth_token, u, params).ct_eq(&given)))
}

fn field<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// `whatsapp:+27…` → `+27…`; Twilio's `WaId` has no `+`.
fn twilio_address(s: &str) -> String {
    let s = s.trim();
    let s = s.strip_prefix("whatsapp:").unwrap_or(s);
    if s.starts_with('+') {
        s.to_string()
    } else {
        format!("+{s}")
    }
}

/// Parses an inbound-message webhook (Twilio's form fields, also the sandbox's).
pub fn parse_twilio_inbound(params: &[(String, String)]) -> Result<WebhookEvent, InputError> {
    let sid = field(params, "MessageSid")
        .or_else(|| field(params, "SmsMessageSid"))
        .filter(|s| !s.is_empty())
        .ok_or_else(|| InputError::new("invalid_webhook", "MessageSid is missing"))?;
    let from = field(params, "From")
        .filter(|s| !s.trim().is_empty())
        .or_else(|| field(params, "WaId"))
        .ok_or_else(|| InputError::new("invalid_webhook", "From is missing"))?;
    let num_media: usize = match field(params, "NumMedia").map(str::trim).filter(|s| !s.is_empty()) {
        None => 0,
        Some(n) => n.parse().map_err(|_| InputError::new("invalid_webhook", format!("NumMedia '{n}' is not a number")))?,
    };
    if num_media > 10 {
        return Err(InputError::new("invalid_webhook", format!("NumMedia {num_media} is more than Twilio's 10")));
    }
    let mut media = vec![];
    for i in 0..num_media {
        let url = field(params, &format!("MediaUrl{i}"))
            .filter(|u| !u.is_empty())
            .ok_or_else(|| InputError::new("invalid_webhook", format!("MediaUrl{i} is missing")))?;
        let content_type = field(params, &format!("MediaContentType{i}")).unwrap_or("application/octet-stream").to_string();
        media.push(MediaRef { url: Some(url.to_string()), media_id: None, content_type, sha256: None });
    }
    let body = field(params, "Body").unwrap_or_default().to_string();
    let kind = if !media.is_empty() {
        MessageKind::Media
    } else if field(params, "Latitude").is_some() {
        MessageKind::Other("location".into())
    } else {
        match field(params, "MessageType").unwrap_or("text") {
            "text" | "interactive" | "button" if !body.trim().is_empty() => MessageKind::Text,
            "" if !body.trim().is_empty() => MessageKind::Text,
            other if body.trim().is_empty() => MessageKind::Other(if other.is_empty() { "unknown".into() } else { other.to_string() }),
            _ => MessageKind::Text,
        }
    };
    Ok(WebhookEvent::Message(InboundMessage {
        provider_id: sid.to_string(),
        from: twilio_address(from),
        profile_name: field(params, "ProfileName").unwrap_or_default().to_string(),
        body,
        kind,
        media,
    }))
}

/// Parses a Twilio status callback.
pub fn parse_twilio_status(params: &[(String, String)]) -> Result<WebhookEvent, InputError> {
    let sid = field(params, "MessageSid")
        .or_else(|| field(params, "SmsSid"))
        .filter(|s| !s.is_empty())
        .ok_or_else(|| InputError::new("invalid_webhook", "MessageSid is missing"))?;
    let raw = field(params, "MessageStatus")
        .or_else(|| field(params, "SmsStatus"))
        .ok_or_else(|| InputError::new("invalid_webhook", "MessageStatus is missing"))?;
    let status = DeliveryStatus::from_provider(raw)
        .ok_or_else(|| InputError::new("invalid_webhook", format!("MessageStatus '{raw}' is not a delivery status")))?;
    Ok(WebhookEvent::Status(StatusUpdate {
        provider_id: sid.to_string(),
        status,
        recipient: field(params, "To").filter(|s| !s.is_empty()).map(twilio_address),
        error_code: field(params, "ErrorCode").filter(|s| !s.is_empty()).map(str::to_string),
        error_text: field(params, "ErrorMessage").filter(|s| !s.is_empty()).map(str::to_string),
    }))
}

// ------------------------------------------------------------------ Meta

/// Verifies `X-Hub-Signature-256: sha256=<hex>` over the raw body, in constant time.
pub fn verify_meta(app_secret: &str, raw_body: &[u8], header: &str) -> bool {
    let Some(hex_sig) = header.trim().strip_prefix("sha256=") else { return false };
    let Ok(given) = hex::decode(hex_sig.trim()) else { return false };
    let mut mac = HmacSha256::new_from_slice(app_secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(raw_body);
    bool::from(mac.finalize().into_bytes().as_slice().ct_eq(&given))
}

/// The `X-Hub-Signature-256` header value for a body (tests and mocks).
pub fn meta_signature(app_secret: &str, raw_body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(app_secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(raw_body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[derive(Deserialize)]
struct MetaEnvelope {
    #[serde(default)]
    entry: Vec<MetaEntry>,
}
#[derive(Deserialize)]
struct MetaEntry {
    #[serde(default)]
    changes: Vec<MetaChange>,
}
#[derive(Deserialize)]
struct MetaChange {
    #[serde(default)]
    value: MetaValue,
}
#[derive(Deserialize, Default)]
struct MetaValue {
    #[serde(default)]
    contacts: Vec<MetaContact>,
    #[serde(default)]
    messages: Vec<serde_json::Value>,
    #[serde(default)]
    statuses: Vec<MetaStatus>,
}
#[derive(Deserialize)]
struct MetaContact {
    #[serde(default)]
    wa_id: String,
    #[serde(default)]
    profile: Option<MetaProfile>,
}
#[derive(Deserialize)]
struct MetaProfile {
    #[serde(default)]
    name: String,
}
#[derive(Deserialize)]
struct MetaStatus {
    id: String,
    status: String,
    #[serde(default)]
    recipient_id: Option<String>,
    #[serde(default)]
    errors: Vec<MetaError>,
}
#[derive(Deserialize)]
struct MetaError {
    code: serde_json::Value,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    error_data: Option<MetaErrorData>,
}
#[derive(Deserialize)]
struct MetaErrorData {
    #[serde(default)]
    details: Option<String>,
}

fn str_at<'a>(v: &'a serde_json::Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_str()
}

/// Parses a Meta webhook envelope: every message and status of every entry and change, in
/// order. Unknown fields are ignored; a message type we do not handle becomes `Other`.
pub fn parse_meta(raw_body: &[u8]) -> Result<Vec<WebhookEvent>, InputError> {
    let env: MetaEnvelope =
        serde_json::from_slice(raw_body).map_err(|e| InputError::new("invalid_webhook", format!("not a Meta webhook envelope: {e}")))?;
    let mut out = vec![];
    for change in env.entry.into_iter().flat_map(|e| e.changes) {
        let v = change.value;
        for m in &v.messages {
            let id = str_at(m, &["id"]).ok_or_else(|| InputError::new("invalid_webhook", "a message has no id"))?;
            let from = str_at(m, &["from"]).ok_or_else(|| InputError::new("invalid_webhook", format!("message {id} has no sender")))?;
            let typ = str_at(m, &["type"]).unwrap_or("unknown");
            let profile_name =
                v.contacts.iter().find(|c| c.wa_id == from).and_then(|c| c.profile.as_ref()).map(|p| p.name.clone()).unwrap_or_default();
            let (kind, body, media) = match typ {
                "text" => (MessageKind::Text, str_at(m, &["text", "body"]).unwrap_or_default().to_string(), vec![]),
                "image" | "document" | "video" | "audio" => {
                    let obj = &m[typ];
                    let media_id = str_at(obj, &["id"])
                        .ok_or_else(|| InputError::new("invalid_webhook", format!("{typ} of message {id} has no id")))?;
                    let mr = MediaRef {
                        url: str_at(obj, &["url"]).map(str::to_string),
                        media_id: Some(media_id.to_string()),
                        content_type: str_at(obj, &["mime_type"]).unwrap_or("application/octet-stream").to_string(),
                        sha256: str_at(obj, &["sha256"]).map(str::to_string),
                    };
                    (MessageKind::Media, str_at(obj, &["caption"]).unwrap_or_default().to_string(), vec![mr])
                }
                "button" => (MessageKind::Text, str_at(m, &["button", "text"]).unwrap_or_default().to_string(), vec![]),
                "interactive" => {
                    let title = str_at(m, &["interactive", "button_reply", "title"])
                        .or_else(|| str_at(m, &["interactive", "list_reply", "title"]))
                        .unwrap_or_default();
                    (MessageKind::Text, title.to_string(), vec![])
                }
                other => (MessageKind::Other(other.to_string()), String::new(), vec![]),
            };
            out.push(WebhookEvent::Message(InboundMessage {
                provider_id: id.to_string(),
                from: twilio_address(from),
                profile_name,
                body,
                kind,
                media,
            }));
        }
        for s in v.statuses {
            let Some(status) = DeliveryStatus::from_provider(&s.status) else {
                tracing::info!(status = %s.status, "Meta status not tracked; ignored");
                continue;
            };
            let err = s.errors.first();
            out.push(WebhookEvent::Status(StatusUpdate {
                provider_id: s.id,
                status,
                recipient: s.recipient_id.map(|r| twilio_address(&r)),
                error_code: err.map(|e| match &e.code {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                }),
                error_text: err.and_then(|e| {
                    e.error_data.as_ref().and_then(|d| d.details.clone()).or_else(|| e.message.clone()).or_else(|| e.title.clone())
                }),
            }));
        }
    }
    Ok(out)
}

// ------------------------------------------------------------------ send errors

/// Whether a failed send may be tried again, from the provider's error code (PROTOCOLS.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// A transient failure: try again after a backoff.
    Yes,
    /// The request itself cannot succeed (bad number, opted out, policy, …).
    No,
    /// Outside the 24-hour window: only an approved template can go.
    NeedsTemplate,
}

/// Twilio error codes that are worth retrying, and those that mean "send a template".
pub fn twilio_retry(code: i64) -> Retry {
    match code {
        63016 => Retry::NeedsTemplate,
        20429 | 63017 | 63018 | 63038 | 30003 | 20500 | 20503 => Retry::Yes,
        _ => Retry::No,
    }
}

/// Meta Cloud API error codes that are worth retrying, and those that mean "send a template".
pub fn meta_retry(code: i64) -> Retry {
    match code {
        131047 => Retry::NeedsTemplate,
        4 | 80007 | 130429 | 131056 | 131000 | 131016 | 1 | 2 | 131057 => Retry::Yes,
        _ => Retry::No,
    }
}

/// A failure as a reviewer reads it: what happened and what to do.
pub fn explain_error(code: &str) -> Option<&'static str> {
    Some(match code {
        "131047" | "63016" => {
            "Outside the 24-hour window: the contractor has not written in 24 hours. Send an approved template, or wait for them to write."
        }
        "21211" | "63024" | "131026" => "Not a WhatsApp number that can receive messages. Check the number with the contractor.",
        "21610" | "63014" | "131050" => "The contractor has opted out (STOP) or blocked the sender. They must send START first.",
        "130429" | "63017" | "63018" | "20429" | "4" | "80007" => {
            "The provider's rate limit was hit; the message is retried automatically."
        }
        "131056" => "Too many messages to this contractor in a short time; retried automatically.",
        "190" | "0" => "The provider's access token has expired; an admin must renew it under Settings → Integrations.",
        "131049" => "WhatsApp held this message back to protect engagement; try again after 24 hours.",
        "opted_out" => "The contractor has opted out (STOP); nothing is sent until they send START.",
        "window_closed" => "Outside the 24-hour window and no approved template is configured for this message.",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/fixtures");
        std::fs::read(format!("{dir}/{name}")).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
    }

    fn pairs(v: &serde_json::Value) -> Vec<(String, String)> {
        v.as_array().unwrap().iter().map(|p| (p[0].as_str().unwrap().to_string(), p[1].as_str().unwrap().to_string())).collect()
    }

    #[test]
    fn every_official_twilio_signature_vector_verifies_or_is_refused_as_expected() {
        let doc: serde_json::Value = serde_json::from_slice(&fixture("twilio-signature-vectors.json")).unwrap();
        let vectors = doc["vectors"].as_array().unwrap();
        assert!(vectors.len() >= 10);
        for v in vectors {
            let id = v["id"].as_str().unwrap();
            let params = pairs(&v["params"]);
            let body = v["raw_body"].as_str().map(|b| b.as_bytes().to_vec());
            let ok = verify_twilio(
                v["auth_token"].as_str().unwrap(),
                v["request_url"].as_str().unwrap(),
                &params,
                body.as_deref(),
                v["x_twilio_signature"].as_str().unwrap(),
            );
            assert_eq!(ok, v["expect_valid"].as_bool().unwrap(), "vector {id}");
        }
        for ex in doc["body_hash"]["examples"].as_array().unwrap() {
            assert_eq!(hex::encode(Sha256::digest(ex["body"].as_str().unwrap().as_bytes())), ex["sha256_hex"].as_str().unwrap());
        }
    }

    #[test]
    fn twilio_signatures_cover_every_parameter_and_the_body_hash() {
        let url = "https://dropcheck.example/webhooks/twilio";
        let params = parse_form(&fixture("twilio-inbound-image.form"));
        let sig = twilio_signature("secret-token", url, &params);
        assert!(verify_twilio("secret-token", url, &params, None, &sig));
        assert!(!verify_twilio("other-token", url, &params, None, &sig));
        let mut tampered = params.clone();
        tampered.push(("Extra".into(), "1".into()));
        assert!(!verify_twilio("secret-token", url, &tampered, None, &sig), "an added parameter breaks the signature");
        assert!(!verify_twilio("secret-token", url, &params, None, "not base64!"));
        // A JSON body whose hash differs from bodySHA256 is refused even with a good URL signature.
        let hash = hex::encode(Sha256::digest(b"{}"));
        let jurl = format!("{url}?bodySHA256={hash}");
        let jsig = twilio_signature("secret-token", &jurl, &[]);
        assert!(verify_twilio("secret-token", &jurl, &[], Some(b"{}"), &jsig));
        assert!(!verify_twilio("secret-token", &jurl, &[], Some(b"{\"a\":1}"), &jsig));
        // Go's vector: Reason sorts before ReasonConferenceEnded.
        let p = vec![("ReasonConferenceEnded".to_string(), "test".to_string()), ("Reason".to_string(), "Participant".to_string())];
        let good = twilio_signature("12345", url, &p);
        let mut wrong = HmacSha1::new_from_slice(b"12345").unwrap();
        wrong.update(format!("{url}ReasonConferenceEndedtestReasonParticipant").as_bytes());
        use base64::Engine;
        let wrong = base64::engine::general_purpose::STANDARD.encode(wrong.finalize().into_bytes());
        assert!(verify_twilio("12345", url, &p, None, &good));
        assert!(!verify_twilio("12345", url, &p, None, &wrong));
    }

    #[test]
    fn meta_signature_vectors_verify_in_constant_time() {
        let doc: serde_json::Value = serde_json::from_slice(&fixture("meta-signature-vectors.json")).unwrap();
        for v in doc["vectors"].as_array().unwrap() {
            let secret = v["secret"].as_str().unwrap();
            let payload = v["payload"].as_str().unwrap().as_bytes();
            let header = format!("sha256={}", v["hmac_sha256_hex"].as_str().unwrap());
            assert!(verify_meta(secret, payload, &header));
            assert_eq!(meta_signature(secret, payload), header);
            assert!(!verify_meta("wrong", payload, &header));
            assert!(!verify_meta(secret, payload, v["hmac_sha256_hex"].as_str().unwrap()), "the sha256= prefix is required");
        }
        // Meta's SDK vector (PROTOCOLS.md 2b).
        assert!(verify_meta("TEST_APP_SECRET", b"test", "sha256=0c61947b610d4f45e65f3d680e26027121ec2413e77598bcb6cfc6e0d9888221"));
        assert!(!verify_meta("TEST_APP_SECRET", b"test", "sha256=zz"));
    }

    #[test]
    fn twilio_fixtures_parse() {
        let WebhookEvent::Message(m) = parse_twilio_inbound(&parse_form(&fixture("twilio-inbound-image.form"))).unwrap() else { panic!() };
        assert_eq!(m.from, "+31612345678");
        assert_eq!(m.kind, MessageKind::Media);
        assert_eq!(m.media.len(), 1);
        assert_eq!(m.media[0].content_type, "image/jpeg");
        assert!(m.media[0].url.as_deref().unwrap().starts_with("https://api.twilio.com/2010-04-01/Accounts/"));
        let WebhookEvent::Message(t) = parse_twilio_inbound(&parse_form(&fixture("twilio-inbound-text.form"))).unwrap() else { panic!() };
        assert_eq!(t.kind, MessageKind::Text);
        assert!(!t.body.is_empty());
        let WebhookEvent::Status(s) = parse_twilio_status(&parse_form(&fixture("twilio-status-delivered.form"))).unwrap() else { panic!() };
        assert_eq!((s.provider_id.as_str(), s.status), ("SMdf55df64a2ff4920bb0748193cfbb640", DeliveryStatus::Delivered));
        assert_eq!(s.recipient.as_deref(), Some("+31612345678"));
        // Location and a message without anything we understand are kept as Other, not errors.
        let loc = parse_form(b"MessageSid=SM1&From=whatsapp%3A%2B27640000001&Latitude=1.0&Longitude=2.0&NumMedia=0&Body=");
        let WebhookEvent::Message(l) = parse_twilio_inbound(&loc).unwrap() else { panic!() };
        assert_eq!(l.kind, MessageKind::Other("location".into()));
        let sticker = parse_form(b"MessageSid=SM2&From=whatsapp%3A%2B27640000001&MessageType=sticker&NumMedia=0&Body=");
        let WebhookEvent::Message(st) = parse_twilio_inbound(&sticker).unwrap() else { panic!() };
        assert_eq!(st.kind, MessageKind::Other("sticker".into()));
        // Malformed: no sid, a bad NumMedia, a missing media URL.
        assert!(parse_twilio_inbound(&parse_form(b"From=whatsapp%3A%2B1")).is_err());
        assert!(parse_twilio_inbound(&parse_form(b"MessageSid=SM1&From=%2B1&NumMedia=x")).is_err());
        assert!(parse_twilio_inbound(&parse_form(b"MessageSid=SM1&From=%2B1&NumMedia=1")).is_err());
        assert!(parse_twilio_status(&parse_form(b"MessageSid=SM1&MessageStatus=weird")).is_err());
    }

    #[test]
    fn meta_fixtures_parse_with_several_entries_per_envelope() {
        let text = parse_meta(&fixture("meta-inbound-text.json")).unwrap();
        let WebhookEvent::Message(t) = &text[0] else { panic!() };
        assert_eq!(t.body, "Does it come in another color?");
        assert!(t.from.starts_with('+'));
        let img = parse_meta(&fixture("meta-inbound-image.json")).unwrap();
        let WebhookEvent::Message(i) = &img[0] else { panic!() };
        assert_eq!(i.kind, MessageKind::Media);
        assert!(i.media[0].media_id.is_some());
        let sent = parse_meta(&fixture("meta-status-sent.json")).unwrap();
        assert!(matches!(&sent[0], WebhookEvent::Status(s) if s.status == DeliveryStatus::Sent));
        let failed = parse_meta(&fixture("meta-status-failed.json")).unwrap();
        let WebhookEvent::Status(f) = &failed[0] else { panic!() };
        assert_eq!((f.status, f.error_code.as_deref()), (DeliveryStatus::Failed, Some("131049")));
        // Two entries, a message and a status in one envelope, plus a reaction we don't handle.
        let both = serde_json::json!({"object": "whatsapp_business_account", "entry": [
            {"id": "1", "changes": [{"field": "messages", "value": {"messaging_product": "whatsapp",
                "contacts": [{"profile": {"name": "Sam"}, "wa_id": "27640000001"}],
                "messages": [{"from": "27640000001", "id": "wamid.A", "timestamp": "1", "type": "reaction", "reaction": {"emoji": "👍"}}]}}]},
            {"id": "2", "changes": [{"field": "messages", "value": {"statuses": [
                {"id": "wamid.B", "status": "read", "timestamp": "2", "recipient_id": "27640000001"}]}}]}]});
        let evs = parse_meta(both.to_string().as_bytes()).unwrap();
        assert_eq!(evs.len(), 2);
        assert!(matches!(&evs[0], WebhookEvent::Message(m) if m.kind == MessageKind::Other("reaction".into()) && m.profile_name == "Sam"));
        assert!(matches!(&evs[1], WebhookEvent::Status(s) if s.status == DeliveryStatus::Read));
        assert_eq!(evs[1].dedupe_key(), "status:wamid.B:read");
        assert!(parse_meta(b"{not json").is_err());
    }

    #[test]
    fn statuses_only_move_forward() {
        use DeliveryStatus::*;
        assert!(Queued.may_become(Sent) && Sent.may_become(Delivered) && Delivered.may_become(Read) && Sent.may_become(Read));
        assert!(!Read.may_become(Delivered) && !Delivered.may_become(Sent) && !Sent.may_become(Sent));
        assert!(Sent.may_become(Failed) && !Failed.may_become(Delivered) && !Read.may_become(Failed));
    }

    #[test]
    fn error_codes_are_classified() {
        assert_eq!(twilio_retry(63016), Retry::NeedsTemplate);
        assert_eq!(twilio_retry(20429), Retry::Yes);
        assert_eq!(twilio_retry(21211), Retry::No);
        assert_eq!(twilio_retry(21610), Retry::No);
        assert_eq!(meta_retry(131047), Retry::NeedsTemplate);
        assert_eq!(meta_retry(130429), Retry::Yes);
        assert_eq!(meta_retry(131050), Retry::No);
        assert!(explain_error("131047").unwrap().contains("24-hour"));
    }
}
