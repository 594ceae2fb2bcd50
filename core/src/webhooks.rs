//! Outbound event webhooks by the Standard Webhooks specification: `whsec_` secrets, the
//! `v1` signature over `{id}.{timestamp}.{body}`, the retry schedule, what a response means,
//! and which addresses may be called. Pure; the store keeps endpoints and deliveries, the
//! server's worker sends.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::net::IpAddr;

use crate::error::InputError;

/// Event types an endpoint may subscribe to (besides the types other systems post, which
/// are theirs to name): the domain events Dropcheck records.
pub const EVENT_TYPES: &[&str] = &[
    "drop.status_changed",
    "drop.photo_added",
    "message.inbound",
    "message.failed",
    "contact.created",
    "contact.updated",
    "contact.opted_out",
    "contact.tag_added",
    "contact.tag_removed",
];

/// Svix's schedule: the delay before each attempt after the first (the 2nd … 8th), in ms.
pub const RETRY_SCHEDULE_MS: &[i64] = &[5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000];
/// An endpoint failing this long without a success is disabled (and the admins are told).
pub const DISABLE_AFTER_MS: i64 = 5 * 24 * 3_600_000;
/// How long the secret before a rotation still signs.
pub const ROTATION_OVERLAP_MS: i64 = 24 * 3_600_000;

/// A new endpoint secret: `whsec_` + base64 of 32 random bytes.
pub fn new_secret() -> String {
    format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>()))
}

/// A new message id (`webhook-id`).
pub fn new_message_id() -> String {
    format!("msg_{}", hex::encode(rand::random::<[u8; 12]>()))
}

/// The `v1,<base64>` signature of a message with one secret; `None` for a secret that is
/// not `whsec_` + base64.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &str) -> Option<String> {
    let key = base64::engine::general_purpose::STANDARD.decode(secret.strip_prefix("whsec_")?).ok()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body.as_bytes());
    Some(format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())))
}

/// The `webhook-signature` header: one signature per secret in effect, space-separated.
pub fn signature_header(secrets: &[String], id: &str, timestamp: i64, body: &str) -> String {
    secrets.iter().filter_map(|s| sign(s, id, timestamp, body)).collect::<Vec<_>>().join(" ")
}

/// What an attempt's outcome means for its delivery.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Succeeded,
    /// Try again at this time.
    Retry(i64),
    /// No more attempts: the schedule is spent, or the receiver said `abort-message`.
    GiveUp(&'static str),
    /// 410 Gone: the endpoint is disabled.
    DisableEndpoint,
}

/// Judges an attempt: `status` (none: no answer — a timeout or a refused connection),
/// `retry_after_ms` from the response, whether it said `webhook-delivery: abort-message`,
/// `attempts` made so far (this one included), `schedule` the delays between attempts
/// ([`RETRY_SCHEDULE_MS`]). Redirects are failures (never followed).
pub fn judge(status: Option<u16>, retry_after_ms: Option<i64>, abort: bool, attempts: i64, now: i64, schedule: &[i64]) -> Verdict {
    match status {
        Some(200..=299) => return Verdict::Succeeded,
        Some(410) => return Verdict::DisableEndpoint,
        _ if abort => return Verdict::GiveUp("the receiver answered webhook-delivery: abort-message"),
        _ => {}
    }
    let Some(&delay) = schedule.get((attempts - 1).max(0) as usize) else {
        return Verdict::GiveUp("every attempt of the retry schedule failed");
    };
    // A little jitter (up to a tenth) so deliveries that failed together spread out.
    let jitter = (rand::random::<u32>() as i64) % (delay / 10).max(1);
    let throttled = matches!(status, Some(429 | 502 | 503 | 504));
    let floor = if throttled { retry_after_ms.unwrap_or(0) } else { 0 };
    Verdict::Retry(now + (delay + jitter).max(floor))
}

/// Checks an endpoint's address: http(s), a host, no credentials; https unless
/// `allow_private` (development and intranets).
pub fn check_url(raw: &str, allow_private: bool) -> Result<url::Url, InputError> {
    let bad = |m: &str| InputError::new("invalid_url", format!("'{}': {m}", raw.trim()));
    let u = url::Url::parse(raw.trim()).map_err(|e| bad(&e.to_string()))?;
    match u.scheme() {
        "https" => {}
        "http" if allow_private => {}
        "http" => return Err(bad("use https (http only with DROPCHECK_WEBHOOK_ALLOW_PRIVATE=true)")),
        _ => return Err(bad("not an http(s) address")),
    }
    if u.host_str().is_none_or(str::is_empty) || !u.username().is_empty() || u.password().is_some() {
        return Err(bad("needs a host and no user name or password"));
    }
    if !allow_private {
        let literal = match u.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        if literal.is_some_and(refused_address) || u.host_str().is_some_and(|h| h.eq_ignore_ascii_case("localhost")) {
            return Err(bad("a private, loopback or link-local address (allowed only with DROPCHECK_WEBHOOK_ALLOW_PRIVATE=true)"));
        }
    }
    if raw.len() > 2000 {
        return Err(bad("longer than 2000 characters"));
    }
    Ok(u)
}

/// Whether an address is one outbound calls refuse (loopback, private, link-local,
/// unspecified, multicast, shared, documentation) unless private addresses are allowed.
pub fn refused_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || (o[0] == 100 && (64..128).contains(&o[1])) // shared address space (CGNAT)
                || o[0] == 0
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return refused_address(IpAddr::V4(v4));
            }
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link-local
        }
    }
}

/// Checks an endpoint's event types: 1–50, each a known domain event type or a name like
/// `order.paid` (an event other systems post).
pub fn check_event_types(types: &[String]) -> Result<(), InputError> {
    if types.is_empty() || types.len() > 50 {
        return Err(InputError::new("invalid_event_types", "event_types lists 1–50 event types, e.g. [\"drop.status_changed\"]"));
    }
    for t in types {
        crate::automation::check_event_type(t).map_err(|e| InputError::new("invalid_event_types", format!("'{t}': {}", e.message)))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_specifications_test_vector_signs_to_its_signature() {
        let sig = sign(
            "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
            "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
            1649367553,
            r#"{"email":"test@example.com","username":"test_user"}"#,
        );
        assert_eq!(sig.as_deref(), Some("v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="));
        let both = signature_header(&[new_secret(), "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD".into()], "msg_1", 1, "{}");
        assert_eq!(both.split(' ').count(), 2, "one signature per secret during a rotation");
        assert!(sign("nope", "msg_1", 1, "{}").is_none());
    }

    #[test]
    fn responses_are_judged_by_the_specification() {
        assert_eq!(judge(Some(204), None, false, 1, 0, RETRY_SCHEDULE_MS), Verdict::Succeeded);
        assert_eq!(judge(Some(410), None, false, 1, 0, RETRY_SCHEDULE_MS), Verdict::DisableEndpoint);
        assert!(matches!(judge(Some(500), None, true, 1, 0, RETRY_SCHEDULE_MS), Verdict::GiveUp(_)));
        match judge(Some(500), None, false, 1, 0, RETRY_SCHEDULE_MS) {
            Verdict::Retry(at) => assert!((5_000..5_500).contains(&at), "{at}"),
            v => panic!("{v:?}"),
        }
        match judge(Some(429), Some(60_000), false, 1, 0, RETRY_SCHEDULE_MS) {
            Verdict::Retry(at) => assert!(at >= 60_000, "Retry-After is a floor: {at}"),
            v => panic!("{v:?}"),
        }
        match judge(Some(500), Some(60_000), false, 1, 0, RETRY_SCHEDULE_MS) {
            Verdict::Retry(at) => assert!(at < 60_000, "Retry-After counts on throttling answers only: {at}"),
            v => panic!("{v:?}"),
        }
        assert!(matches!(judge(Some(301), None, false, 1, 0, RETRY_SCHEDULE_MS), Verdict::Retry(_)), "a redirect is a failure");
        assert!(matches!(judge(None, None, false, 8, 0, RETRY_SCHEDULE_MS), Verdict::GiveUp(_)), "eight attempts in all");
    }

    #[test]
    fn private_addresses_are_refused() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "172.16.5.4",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(refused_address(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:4700::1111"] {
            assert!(!refused_address(ip.parse().unwrap()), "{ip}");
        }
        assert!(check_url("http://example.com/hook", false).is_err());
        assert!(check_url("https://user:pw@example.com/hook", false).is_err());
        assert!(check_url("ftp://example.com", true).is_err());
        assert!(check_url("https://example.com/hook", false).is_ok());
        assert!(check_url("https://127.0.0.1/hook", false).is_err());
        assert!(check_url("https://[::1]/hook", false).is_err());
        assert!(check_url("http://127.0.0.1:9/hook", true).is_ok());
        assert!(check_event_types(&[]).is_err());
        assert!(check_event_types(&["drop.status_changed".into(), "order.paid".into()]).is_ok());
    }
}
