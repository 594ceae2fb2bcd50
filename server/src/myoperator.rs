//! MyOperator as a send-only provider for notifications (issue 15, item 4), as the
//! predecessor notification service used it: messages queued through the notifications API
//! (`/api/notifications/send-message`) go out through MyOperator's WhatsApp API when it is
//! configured; the contractors' conversation stays with the active provider (Twilio, Meta or
//! the sandbox), since MyOperator documents no inbound webhook.
//!
//! The request (PROTOCOLS.md §3, `fixtures/myoperator-send-text-request.json`):
//! `POST {base}/chat/messages` with `Authorization: Bearer KEY`, `X-MYOP-COMPANY-ID`, a JSON
//! body `{waba_id, phone_number_id, customer_country_code, customer_number, myop_ref_id,
//! data: {type: text|image|template, context: …}}`; success is
//! `{"status": "success", "code": "200", "message": "Message Sent"}`. The message's own
//! reference (`myop_ref_id`) is its idempotency key, so a retry names the same message.

use crate::providers::Accepted;
use dropcheck_core::domain::Phone;
use dropcheck_core::outbox::{Content, SendFailure};
use dropcheck_core::providers::{DeliveryStatus, Retry};

/// `MYOPERATOR_*` (or Settings → Integrations): the account a notification is sent from.
pub use dropcheck_core::integrations::MyOperatorSettings as MyOperatorConfig;

/// The request body for one message.
pub fn body(cfg: &MyOperatorConfig, to: &Phone, content: &Content, reference: &str) -> Result<serde_json::Value, SendFailure> {
    let (country, number) = to.split_country();
    let data = match content {
        Content::Text { body, media_url: None } => serde_json::json!({"type": "text", "context": {"body": body}}),
        Content::Text { body, media_url: Some(link) } => {
            let filename = link.rsplit('/').next().filter(|f| !f.is_empty()).unwrap_or("image.jpg");
            let mime = if filename.to_ascii_lowercase().ends_with(".png") { "image/png" } else { "image/jpeg" };
            serde_json::json!({"type": "image", "context": {"link": link, "filename": filename, "caption": body, "mime_type": mime}})
        }
        // MyOperator sends Meta's approved templates: the body's parameters by position.
        Content::MetaTemplate { name, language, params } => {
            let values: serde_json::Map<String, serde_json::Value> =
                params.iter().enumerate().map(|(i, p)| ((i + 1).to_string(), serde_json::Value::from(p.as_str()))).collect();
            serde_json::json!({"type": "template", "context": {"template_name": name, "language": language, "body": values}})
        }
        Content::TwilioTemplate { .. } => {
            return Err(SendFailure {
                retry: Retry::No,
                code: "wrong_template".into(),
                message: "MyOperator sends Meta templates; this message has only a Twilio content template".into(),
                retry_after: None,
            })
        }
    };
    Ok(serde_json::json!({
        "waba_id": cfg.waba_id,
        "phone_number_id": cfg.phone_number_id,
        "customer_country_code": country,
        "customer_number": number,
        "myop_ref_id": reference,
        "data": data,
    }))
}

/// What a failed answer means: 403 (an invalid company) and `CHAT_0302` (the WhatsApp
/// account disabled) will not succeed on a retry; 429 and 5xx may.
pub fn failure(status: u16, text: &str) -> SendFailure {
    let v: serde_json::Value = serde_json::from_str(text).unwrap_or(serde_json::Value::Null);
    let code = v
        .get("code")
        .or_else(|| v.get("error_code"))
        .map(|c| c.as_str().map(str::to_string).unwrap_or_else(|| c.to_string()))
        .filter(|c| !c.is_empty() && c != "null");
    let message = v
        .get("message")
        .or_else(|| v.get("error"))
        .and_then(|m| m.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| format!("HTTP {status}"));
    let retry = match (status, code.as_deref()) {
        (_, Some("CHAT_0302")) | (403, _) => Retry::No,
        (429, _) => Retry::Yes,
        (s, _) if s >= 500 => Retry::Yes,
        _ => Retry::No,
    };
    let code = match (status, code) {
        (403, None) => "403".to_string(),
        (_, Some(c)) => c,
        (s, None) => format!("http_{s}"),
    };
    SendFailure { retry, code, message, retry_after: None }
}

/// Sends one message; the accepted message's id is `myop:` and its reference.
pub async fn send(
    client: &reqwest::Client,
    cfg: &MyOperatorConfig,
    to: &Phone,
    content: &Content,
    reference: &str,
) -> Result<Accepted, SendFailure> {
    let payload = body(cfg, to, content, reference)?;
    let res = client
        .post(format!("{}/chat/messages", cfg.api_base.trim_end_matches('/')))
        .bearer_auth(&cfg.api_key)
        .header("X-MYOP-COMPANY-ID", &cfg.company_id)
        .header("Accept", "application/json")
        .json(&payload)
        .send()
        .await
        .map_err(|e| SendFailure::transient("network", format!("MyOperator did not answer: {}", crate::providers::without_url(&e))))?;
    let status = res.status().as_u16();
    let text = res.text().await.unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
    if (200..300).contains(&status) && v.get("status").and_then(|s| s.as_str()) == Some("success") {
        return Ok(Accepted { provider_id: format!("myop:{reference}"), status: DeliveryStatus::Sent });
    }
    if (200..300).contains(&status) {
        // A 2xx that is not the documented success: not known to be sent.
        return Err(SendFailure::transient(
            "bad_response",
            format!("MyOperator answered without success: {}", text.chars().take(200).collect::<String>()),
        ));
    }
    Err(failure(status, &text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> MyOperatorConfig {
        MyOperatorConfig {
            api_key: "k".into(),
            company_id: "c1".into(),
            phone_number_id: "<YOUR_PHONE_NUMBER_ID>".into(),
            waba_id: "<YOUR_WABA_ID>".into(),
            api_base: "https://publicapi.myoperator.co".into(),
        }
    }

    #[test]
    fn a_text_is_the_documented_request_and_errors_map_to_retry_or_not() {
        // The support article's sample, field for field.
        let mut fixture: serde_json::Value =
            serde_json::from_str(include_str!("../../testdata/fixtures/myoperator-send-text-request.json")).unwrap();
        // The sample's 555-123-4567 is not a number that exists; a real one in its place.
        assert_eq!(fixture["customer_number"], "5551234567");
        fixture["customer_number"] = "2015550123".into();
        let to = Phone::parse("+12015550123").unwrap();
        let text = Content::Text { body: "Hello! Your order has shipped.".into(), media_url: None };
        assert_eq!(body(&cfg(), &to, &text, "order-98765").unwrap(), fixture);
        let za = body(&cfg(), &Phone::parse("+27640412391").unwrap(), &text, "r").unwrap();
        assert_eq!((za["customer_country_code"].as_str(), za["customer_number"].as_str()), (Some("27"), Some("640412391")));
        let t =
            Content::MetaTemplate { name: "payment_confirmation".into(), language: "en".into(), params: vec!["R 10".into(), "X1".into()] };
        let tb = body(&cfg(), &to, &t, "r").unwrap();
        assert_eq!(
            tb["data"],
            serde_json::json!({"type": "template", "context": {"template_name": "payment_confirmation", "language": "en", "body": {"1": "R 10", "2": "X1"}}})
        );

        let disabled = failure(400, r#"{"status": "error", "code": "CHAT_0302", "message": "WABA disabled"}"#);
        assert_eq!((disabled.retry, disabled.code.as_str()), (Retry::No, "CHAT_0302"));
        let company = failure(403, r#"{"status": "error", "message": "Invalid company ID!"}"#);
        assert_eq!((company.retry, company.code.as_str(), company.message.as_str()), (Retry::No, "403", "Invalid company ID!"));
        assert_eq!(failure(502, "<html>bad gateway</html>").retry, Retry::Yes);
        assert_eq!(failure(429, "{}").retry, Retry::Yes);
    }
}
