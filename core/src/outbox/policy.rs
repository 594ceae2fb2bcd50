//! What a queued message does when it is due, decided in one place and without I/O: whether
//! it may go at all (opted out, muted), in which form (free text inside WhatsApp's 24-hour
//! window, else the template's approved provider template), whether a previous attempt must
//! first be looked for at the provider, and — after a failed attempt — whether and when it
//! is tried again. The sender in the server only claims, sends over HTTP and records.

use std::time::Duration;

use crate::outbox::{Outbound, SendOutcome, LEASE_EXPIRED};
use crate::providers::{Provider, Retry};
use crate::templates::{render_params, ProviderTemplates};

/// WhatsApp accepts free-form messages this long after the contact last wrote.
pub const SESSION_WINDOW_MS: i64 = 24 * 3600 * 1000;
/// How long a burst acknowledgment waits, at a time, for the burst's events to be processed.
pub const BURST_WAIT_MS: i64 = 1000;

/// How the outbox retries transient failures: exponential backoff with full jitter
/// (uniform in [0, min(cap, base·2^attempt)]) until a deadline — the horizon after the
/// series began — not for a number of attempts, so a provider outage of hours loses nothing.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryPolicy {
    pub base_ms: i64,
    pub cap_ms: i64,
    /// How long a message keeps retrying, from when it was queued (or resent).
    pub horizon_ms: i64,
}

impl RetryPolicy {
    /// The backoff before attempt `attempt + 1`, never shorter than the provider's `Retry-After`.
    pub fn delay_ms(&self, attempt: i64, retry_after_ms: Option<i64>) -> i64 {
        use rand::Rng;
        let ceiling = self.base_ms.saturating_mul(1i64 << attempt.clamp(0, 30)).min(self.cap_ms).max(1);
        let jitter = rand::thread_rng().gen_range(0..=ceiling);
        jitter.max(retry_after_ms.unwrap_or(0))
    }

    /// When a message whose attempt number `attempt` failed transiently at `now` is tried
    /// again, or `None` once its series (begun at `since`) has run out of time. The last
    /// attempt falls on the deadline itself.
    pub fn next_attempt(&self, attempt: i64, since: i64, now: i64) -> Option<i64> {
        let deadline = since.saturating_add(self.horizon_ms);
        (now < deadline).then(|| (now + self.delay_ms(attempt, None)).min(deadline))
    }

    /// When a message the provider throttled (`Retry-After`) is tried again: exactly then,
    /// unless that is past the deadline.
    pub fn after_throttle(&self, since: i64, now: i64, retry_after_ms: i64) -> Option<i64> {
        let at = now.saturating_add(retry_after_ms.max(0));
        (at <= since.saturating_add(self.horizon_ms)).then_some(at)
    }
}

/// What goes to the provider: free-form text (optionally with a picture or document by URL,
/// the text being its caption), or an approved template (the only thing WhatsApp accepts
/// outside the 24-hour window), in the active provider's form.
#[derive(Debug, Clone, PartialEq)]
pub enum Content {
    Text {
        body: String,
        media_url: Option<String>,
    },
    /// Twilio Content API: `ContentSid` and variables "1", "2", … in order.
    TwilioTemplate {
        content_sid: String,
        variables: Vec<String>,
    },
    /// Meta message template: name, language and body parameters in order.
    MetaTemplate {
        name: String,
        language: String,
        params: Vec<String>,
    },
}

impl Content {
    /// How the message went out, as recorded on it (`text`, `media`, `template:NAME`).
    pub fn sent_as(&self) -> String {
        match self {
            Content::Text { media_url: None, .. } => "text".into(),
            Content::Text { media_url: Some(_), .. } => "media".into(),
            Content::TwilioTemplate { content_sid, .. } => format!("template:{content_sid}"),
            Content::MetaTemplate { name, .. } => format!("template:{name}"),
        }
    }
}

/// Why a send failed, and whether trying again can help.
#[derive(Debug, Clone, PartialEq)]
pub struct SendFailure {
    pub retry: Retry,
    pub code: String,
    pub message: String,
    /// The provider's `Retry-After`, when it gave one.
    pub retry_after: Option<Duration>,
}

impl SendFailure {
    pub fn transient(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self { retry: Retry::Yes, code: code.into(), message: message.into(), retry_after: None }
    }
}

/// Whether a failed send may nevertheless have reached the provider: a timeout or broken
/// connection after the request went out, an unreadable answer, or a 5xx (Twilio documents
/// that a message may have been sent despite its error 20500). So is a send interrupted by
/// the sender's own death (its lease expired).
pub fn is_ambiguous(code: &str) -> bool {
    matches!(code, "network" | "bad_response" | "20500" | LEASE_EXPIRED) || code.starts_with("http_5")
}

/// The STOP and START confirmations: the only messages an opted-out contact gets, and not
/// a message type a contact can mute.
pub fn is_opt_confirmation(template: &str) -> bool {
    matches!(template, "stopped" | "started")
}

/// What the sender does with a due message.
#[derive(Debug, Clone, PartialEq)]
pub enum SendPlan {
    /// Not yet: back in the queue until then, the attempt not counted.
    Defer { until: i64 },
    /// It must not or cannot go; the message fails for good with this reason.
    Fail { code: &'static str, text: String },
    /// Send `content`. If the provider answers that the window is closed after all (our
    /// record of the contact's last message can lag behind its own), send `fallback` in the
    /// same attempt. With `reconcile_first`, the previous attempt may have reached the
    /// provider: look for it there first and send only if it is not found.
    Send { content: Content, fallback: Option<Content>, reconcile_first: bool },
}

impl Outbound {
    /// A burst acknowledgment waits, on its first attempt, until the contact's inbound
    /// events are all processed, so a slow inbox never splits one burst into several replies.
    pub fn waits_for_burst(&self) -> bool {
        self.batch_key.is_some() && self.attempts == 1
    }
}

/// Decides what a claimed message does now. `inbox_backlog` is the number of the contact's
/// inbound events still to process (read only when [`Outbound::waits_for_burst`]; else 0).
pub fn plan_send(msg: &Outbound, provider: Provider, inbox_backlog: i64, now: i64) -> SendPlan {
    if msg.waits_for_burst() && inbox_backlog > 0 {
        return SendPlan::Defer { until: now + BURST_WAIT_MS };
    }
    if !msg.template.as_deref().is_some_and(is_opt_confirmation) {
        if let Some(t) = msg.template.as_deref().filter(|t| crate::notify::parse_muted(msg.muted_types.as_deref()).iter().any(|m| m == t)) {
            return SendPlan::Fail {
                code: "muted",
                text: format!("The contact does not want {t} messages (their notification preferences)."),
            };
        }
        if msg.opted_out != 0 {
            return SendPlan::Fail { code: "opted_out", text: "The contractor sent STOP; nothing is sent until they send START.".into() };
        }
    }
    // The sandbox has no window; a provider refuses free text once it has closed: then only
    // the approved template may go, or the message fails at once with the reason instead of
    // being retried uselessly.
    let window_open = provider == Provider::Sandbox || msg.last_inbound_at.is_some_and(|t| now - t < SESSION_WINDOW_MS);
    let template = template_content(provider, msg);
    let (content, fallback) = if window_open {
        (Content::Text { body: msg.body.clone(), media_url: msg.media_url.clone() }, template.ok().flatten())
    } else {
        match template {
            Ok(Some(t)) => (t, None),
            Ok(None) => {
                let text = "Outside the 24-hour window and no approved template is configured for this message.";
                return SendPlan::Fail { code: "window_closed", text: text.into() };
            }
            Err(text) => return SendPlan::Fail { code: "template_error", text },
        }
    };
    let reconcile_first = msg.attempts > 1 && msg.error_code.as_deref().is_some_and(is_ambiguous);
    SendPlan::Send { content, fallback, reconcile_first }
}

/// What becomes of a message whose attempt failed at `now`: a throttle (a provider's
/// `Retry-After` on a transient failure) waits exactly as told and uses up no attempt; any
/// other transient failure backs off until the retry deadline; the rest fail for good.
pub fn outcome_after_failure(msg: &Outbound, failure: SendFailure, policy: &RetryPolicy, now: i64) -> SendOutcome {
    let SendFailure { retry, code, message, retry_after } = failure;
    if let (Retry::Yes, Some(after)) = (&retry, retry_after) {
        if let Some(until) = policy.after_throttle(msg.retry_from, now, after.as_millis() as i64) {
            return SendOutcome::Throttled { message_id: msg.message_id, code, text: message, until, at: now };
        }
    }
    let retry_at = match retry {
        Retry::Yes => policy.next_attempt(msg.attempts - 1, msg.retry_from, now),
        Retry::No | Retry::NeedsTemplate => None,
    };
    SendOutcome::Failed { message_id: msg.message_id, code, text: message, retry_at, at: now }
}

/// The message as its template's approved provider template for `provider`, with the
/// parameters filled from the variables stored with the message; `None` when there is none;
/// an error (shown on the message) when the configuration or a parameter is broken.
fn template_content(provider: Provider, msg: &Outbound) -> Result<Option<Content>, String> {
    let Some(raw) = msg.provider_template.as_deref() else { return Ok(None) };
    let t = ProviderTemplates::parse(raw).map_err(|e| e.message)?;
    let vars: serde_json::Value = match msg.template_vars.as_deref() {
        Some(v) => serde_json::from_str(v).map_err(|e| format!("the message's template variables are unreadable: {e}"))?,
        None => serde_json::Value::Object(Default::default()),
    };
    let params = |exprs: &[String]| render_params(exprs, &vars).map_err(|e| e.to_string());
    Ok(match provider {
        Provider::Twilio => match t.twilio {
            Some(tw) => Some(Content::TwilioTemplate { variables: params(&tw.variables)?, content_sid: tw.content_sid }),
            None => None,
        },
        Provider::Meta => match t.meta {
            Some(mt) => Some(Content::MetaTemplate { params: params(&mt.params)?, name: mt.name, language: mt.language }),
            None => None,
        },
        Provider::Sandbox => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::MessageId;

    const NOW: i64 = 10_000_000_000;
    const POLICY: RetryPolicy = RetryPolicy { base_ms: 10_000, cap_ms: 600_000, horizon_ms: 86_400_000 };
    const TWILIO_TEMPLATE: &str = r#"{"twilio": {"content_sid": "HX0123456789abcdef0123456789abcdef", "variables": ["drop"]}}"#;

    fn msg() -> Outbound {
        Outbound {
            message_id: MessageId(7),
            phone: crate::domain::Phone::parse("+27821234567").unwrap(),
            body: "DR1 received".into(),
            template: Some("drop_received".into()),
            template_vars: Some(r#"{"drop": "DR12345678"}"#.into()),
            provider_template: None,
            media_url: None,
            batch_key: None,
            error_code: None,
            created_at: NOW - 1000,
            retry_from: NOW - 1000,
            attempts: 1,
            opted_out: 0,
            muted_types: None,
            last_inbound_at: Some(NOW - 60_000),
            channel: "conversation".into(),
        }
    }

    fn text(body: &str) -> Content {
        Content::Text { body: body.into(), media_url: None }
    }

    #[test]
    fn inside_the_window_free_text_goes_with_no_fallback_when_no_template_is_approved() {
        assert_eq!(
            plan_send(&msg(), Provider::Twilio, 0, NOW),
            SendPlan::Send { content: text("DR1 received"), fallback: None, reconcile_first: false }
        );
    }

    #[test]
    fn inside_the_window_the_approved_template_is_the_fallback() {
        let m = Outbound { provider_template: Some(TWILIO_TEMPLATE.into()), ..msg() };
        let template =
            Content::TwilioTemplate { content_sid: "HX0123456789abcdef0123456789abcdef".into(), variables: vec!["DR12345678".into()] };
        assert_eq!(
            plan_send(&m, Provider::Twilio, 0, NOW),
            SendPlan::Send { content: text("DR1 received"), fallback: Some(template), reconcile_first: false }
        );
    }

    #[test]
    fn outside_the_window_only_the_approved_template_goes_or_the_message_fails() {
        let closed = Outbound { last_inbound_at: Some(NOW - SESSION_WINDOW_MS), ..msg() };
        assert!(matches!(plan_send(&closed, Provider::Twilio, 0, NOW), SendPlan::Fail { code: "window_closed", .. }));
        let never = Outbound { last_inbound_at: None, ..msg() };
        assert!(matches!(plan_send(&never, Provider::Meta, 0, NOW), SendPlan::Fail { code: "window_closed", .. }));
        let with_template = Outbound { provider_template: Some(TWILIO_TEMPLATE.into()), ..closed.clone() };
        match plan_send(&with_template, Provider::Twilio, 0, NOW) {
            SendPlan::Send { content: Content::TwilioTemplate { variables, .. }, fallback: None, .. } => {
                assert_eq!(variables, ["DR12345678"])
            }
            other => panic!("{other:?}"),
        }
        // A Twilio template does not help on Meta.
        assert!(matches!(plan_send(&with_template, Provider::Meta, 0, NOW), SendPlan::Fail { code: "window_closed", .. }));
        // The sandbox has no window.
        assert!(matches!(plan_send(&closed, Provider::Sandbox, 0, NOW), SendPlan::Send { .. }));
    }

    #[test]
    fn a_broken_template_configuration_fails_with_its_reason_only_when_it_is_needed() {
        let broken = Outbound { provider_template: Some("{not json".into()), ..msg() };
        assert!(matches!(plan_send(&broken, Provider::Twilio, 0, NOW), SendPlan::Send { fallback: None, .. }));
        let closed = Outbound { last_inbound_at: None, ..broken };
        assert!(matches!(plan_send(&closed, Provider::Twilio, 0, NOW), SendPlan::Fail { code: "template_error", .. }));
        let bad_vars =
            Outbound { provider_template: Some(TWILIO_TEMPLATE.into()), template_vars: Some("[".into()), last_inbound_at: None, ..msg() };
        match plan_send(&bad_vars, Provider::Twilio, 0, NOW) {
            SendPlan::Fail { code: "template_error", text } => assert!(text.contains("unreadable"), "{text}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_opted_out_contact_gets_only_the_stop_and_start_confirmations() {
        let out = Outbound { opted_out: 1, ..msg() };
        assert!(matches!(plan_send(&out, Provider::Twilio, 0, NOW), SendPlan::Fail { code: "opted_out", .. }));
        let untemplated = Outbound { template: None, ..out.clone() };
        assert!(matches!(plan_send(&untemplated, Provider::Twilio, 0, NOW), SendPlan::Fail { code: "opted_out", .. }));
        for t in ["stopped", "started"] {
            let confirmation = Outbound { template: Some(t.into()), muted_types: Some(t.into()), ..out.clone() };
            assert!(matches!(plan_send(&confirmation, Provider::Twilio, 0, NOW), SendPlan::Send { .. }), "{t}");
        }
    }

    #[test]
    fn a_muted_message_type_fails_and_others_go() {
        let m = Outbound { muted_types: Some("reminder drop_received".into()), ..msg() };
        match plan_send(&m, Provider::Meta, 0, NOW) {
            SendPlan::Fail { code: "muted", text } => assert!(text.contains("drop_received"), "{text}"),
            other => panic!("{other:?}"),
        }
        let other = Outbound { muted_types: Some("reminder".into()), ..msg() };
        assert!(matches!(plan_send(&other, Provider::Meta, 0, NOW), SendPlan::Send { .. }));
    }

    #[test]
    fn a_burst_acknowledgment_waits_for_the_burst_on_its_first_attempt_only() {
        let ack = Outbound { batch_key: Some("burst:+27821234567".into()), ..msg() };
        assert_eq!(plan_send(&ack, Provider::Twilio, 3, NOW), SendPlan::Defer { until: NOW + BURST_WAIT_MS });
        assert!(matches!(plan_send(&ack, Provider::Twilio, 0, NOW), SendPlan::Send { .. }));
        let retried = Outbound { attempts: 2, ..ack };
        assert!(matches!(plan_send(&retried, Provider::Twilio, 3, NOW), SendPlan::Send { .. }));
        // Other messages never wait for the inbox.
        assert!(matches!(plan_send(&msg(), Provider::Twilio, 3, NOW), SendPlan::Send { .. }));
    }

    #[test]
    fn after_an_ambiguous_failure_the_provider_is_asked_before_sending_again() {
        for code in ["network", "bad_response", "20500", "http_502", LEASE_EXPIRED] {
            let m = Outbound { attempts: 2, error_code: Some(code.into()), ..msg() };
            assert!(matches!(plan_send(&m, Provider::Twilio, 0, NOW), SendPlan::Send { reconcile_first: true, .. }), "{code}");
        }
        for code in ["21211", "http_429", "63016"] {
            let m = Outbound { attempts: 2, error_code: Some(code.into()), ..msg() };
            assert!(matches!(plan_send(&m, Provider::Twilio, 0, NOW), SendPlan::Send { reconcile_first: false, .. }), "{code}");
        }
        let first = Outbound { error_code: Some("network".into()), ..msg() };
        assert!(matches!(plan_send(&first, Provider::Twilio, 0, NOW), SendPlan::Send { reconcile_first: false, .. }));
    }

    #[test]
    fn a_throttle_waits_as_told_and_other_transient_failures_back_off_until_the_deadline() {
        let m = Outbound { attempts: 3, ..msg() };
        let throttled = SendFailure { retry_after: Some(Duration::from_secs(30)), ..SendFailure::transient("http_429", "slow down") };
        assert_eq!(
            outcome_after_failure(&m, throttled.clone(), &POLICY, NOW),
            SendOutcome::Throttled {
                message_id: MessageId(7),
                code: "http_429".into(),
                text: "slow down".into(),
                until: NOW + 30_000,
                at: NOW
            }
        );
        match outcome_after_failure(&m, SendFailure::transient("http_503", "down"), &POLICY, NOW) {
            SendOutcome::Failed { retry_at: Some(at), code, .. } => {
                assert_eq!(code, "http_503");
                assert!((NOW..=NOW + 40_000).contains(&at), "backoff of attempt 3 is at most 4 × base");
            }
            other => panic!("{other:?}"),
        }
        // Past the deadline: a throttle past it, or any transient failure, gives up.
        let old = Outbound { retry_from: NOW - POLICY.horizon_ms, ..m.clone() };
        assert!(matches!(outcome_after_failure(&old, throttled, &POLICY, NOW), SendOutcome::Failed { retry_at: None, .. }));
        assert!(matches!(
            outcome_after_failure(&old, SendFailure::transient("network", "reset"), &POLICY, NOW),
            SendOutcome::Failed { retry_at: None, .. }
        ));
    }

    #[test]
    fn a_permanent_failure_or_a_closed_window_fails_at_once() {
        for retry in [Retry::No, Retry::NeedsTemplate] {
            let f =
                SendFailure { retry, code: "21211".into(), message: "invalid number".into(), retry_after: Some(Duration::from_secs(5)) };
            assert!(matches!(outcome_after_failure(&msg(), f, &POLICY, NOW), SendOutcome::Failed { retry_at: None, .. }));
        }
    }

    #[test]
    fn backoff_is_jittered_capped_and_honours_retry_after() {
        for attempt in 0..40 {
            let d = POLICY.delay_ms(attempt, None);
            assert!((0..=600_000).contains(&d));
            assert!(d <= 10_000 * (1i64 << attempt.min(30)));
        }
        assert!(POLICY.delay_ms(0, Some(30_000)) >= 30_000, "Retry-After is a floor");
    }

    #[test]
    fn retries_run_until_the_deadline_whatever_the_count() {
        let since = 1_000_000;
        // The 50th attempt an hour in still gets another, at most the cap later.
        let at = POLICY.next_attempt(50, since, since + 3_600_000).expect("within the horizon");
        assert!((since + 3_600_000..=since + 3_600_000 + 600_000).contains(&at));
        // Close to the deadline the last attempt falls on it; at or past it, none.
        let end = since + 86_400_000;
        assert!(POLICY.next_attempt(3, since, end - 1).unwrap() <= end);
        assert_eq!(POLICY.next_attempt(3, since, end), None);
        assert_eq!(POLICY.next_attempt(0, since, end + 5), None);
        // A throttle waits exactly as told, unless that is past the deadline.
        assert_eq!(POLICY.after_throttle(since, since + 10, 30_000), Some(since + 30_010));
        assert_eq!(POLICY.after_throttle(since, end - 10, 30_000), None);
    }
}
