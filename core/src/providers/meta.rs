//! Meta's WhatsApp Cloud API webhooks: the `X-Hub-Signature-256` check and the JSON
//! envelope of messages and statuses.

use super::twilio::twilio_address;
use super::*;

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
