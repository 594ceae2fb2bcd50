//! Twilio's webhooks (and the sandbox's, which speak Twilio's format): the form body, the
//! `X-Twilio-Signature` check, inbound messages and status callbacks.

use super::*;

/// Parses an `application/x-www-form-urlencoded` body into its pairs (values decoded).
pub fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

pub(crate) type HmacSha1 = Hmac<Sha1>;

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

/// Twilio's connection overrides, appended to the webhook addresses Dropcheck gives Twilio (the
/// inbound address an admin enters, the status callback sent with each message): up to 5
/// retries on any failure, a 5xx included. A fragment: Twilio reads it and does not send it.
pub const TWILIO_RETRY_FRAGMENT: &str = "#rc=5&rp=all";

/// The URL variants Twilio may have signed for the URL we reconstructed: as is, without the
/// port, with the scheme's default port, and each with `'` in the query percent-encoded or
/// not (Twilio's SDKs accept the same set); and each with our connection-override fragment,
/// which is not sent (whether Twilio signs the address with it or without is not documented,
/// so both verify).
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
    if !url.contains('#') {
        let with_fragment: Vec<String> = out.iter().map(|u| format!("{u}{TWILIO_RETRY_FRAGMENT}")).collect();
        out.extend(with_fragment);
    }
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
pub(crate) fn twilio_address(s: &str) -> String {
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
