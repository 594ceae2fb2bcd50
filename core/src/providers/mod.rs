//! The WhatsApp providers' wire protocols, without I/O: verifying webhook signatures and
//! parsing webhook payloads into [`WebhookEvent`]s, for Twilio (and the sandbox, which speaks
//! Twilio's format) and Meta's WhatsApp Cloud API. Sending and media downloads live with the
//! HTTP client in the server crate; the error classification they use is here.
//!
//! The payloads the tests replay are in `testdata/fixtures/` (providers' own samples and
//! signature vectors).

mod meta;
mod twilio;

pub use meta::{meta_signature, parse_meta, verify_meta};
pub use twilio::{parse_form, parse_twilio_inbound, parse_twilio_status, twilio_signature, verify_twilio, TWILIO_RETRY_FRAGMENT};

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::InputError;

type HmacSha256 = Hmac<Sha256>;

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

// ------------------------------------------------------------------ send errors

/// Whether a failed send may be tried again, from the provider's error code (Twilio's and
/// Meta's published error codes).
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
    use super::twilio::HmacSha1;
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
        // Signed over the address as configured, with the connection-override fragment that
        // is not sent: it verifies too, and still only with the right token.
        let with_fragment = twilio_signature("secret-token", &format!("{url}{TWILIO_RETRY_FRAGMENT}"), &params);
        assert!(verify_twilio("secret-token", url, &params, None, &with_fragment));
        assert!(!verify_twilio("other-token", url, &params, None, &with_fragment));
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
        // The signature vector of Meta's SDK tests.
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
