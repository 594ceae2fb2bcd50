//! Message templates (Jinja2 syntax through minijinja). Every message the bot sends comes
//! from one: the built-ins below are seeded into the `message_template` table, where admins
//! can edit them; rendering reads the stored body.

use minijinja::{context, Environment, UndefinedBehavior};
use serde::Serialize;

use crate::error::{CoreError, CoreResult};
use crate::store::{DropDetail, Reason};

/// The built-in drop feedback: lists every rejected step with its reason and note, and ends
/// with the exact reply that resubmits the drop.
pub const DROP_FEEDBACK: &str = "\
Hi {{ contractor_name or \"there\" }}, drop {{ drop_number }} ({{ project }}) needs attention:
{% for s in steps %}
• Step {{ s.number }} – {{ s.name }}: {{ s.problem }}{% if s.reason %} ({{ s.reason }}){% endif %}{% if s.note %}. {{ s.note }}{% endif %}

{% endfor %}
Once uploaded, send: {{ drop_number }} DONE";

/// The built-in reply templates, by name. `drop_feedback` is [`DROP_FEEDBACK`].
pub const BUILT_IN: &[(&str, &str)] = &[
    ("drop_feedback", DROP_FEEDBACK),
    (
        "drop_opened",
        "Drop {{ drop_number }} ({{ project }}): {{ done }} of {{ total }} steps have a photo.\n\
{% if with_qa %}It is with QA for review. You can still send photos: a caption like \"3\" puts one on step 3.\n\
{% elif next_step %}Next: step {{ next_step.number }} — {{ next_step.name }}. Send one photo per step; a caption like \"3\" puts it on step 3.\n\
{% else %}Every step has a photo. Send {{ drop_number }} DONE when you are finished.\n{% endif %}\
{% if missing %}Still missing: {{ missing | join(\", \") }}{% endif %}",
    ),
    (
        "photo_ack",
        "Got {{ count }} photo{% if count != 1 %}s{% endif %} for {{ drop_number }}: step{% if steps | length != 1 %}s{% endif %} {{ steps | join(\", \") }} ✓. \
{% for r in retakes %}Step {{ r.step }}: the photo is {{ r.problem }} — {{ r.advice }}, and send it again with the caption \"{{ r.step }}\".\n{% endfor %}\
{% if with_qa %}Every step has a photo: {{ drop_number }} is now with QA for review. You can still send photos; a caption like \"3\" puts one on step 3.\
{% elif next_step %}Next: step {{ next_step.number }} — {{ next_step.name }}{% else %}Every step has a photo. Send {{ drop_number }} DONE when you are finished.{% endif %}",
    ),
    (
        "vision_retake",
        "{{ drop_number }} step {{ step }} ({{ step_name }}): the photo does not seem to show what the step asks for{% if problems %} ({{ problems | join(\", \") }}){% endif %}. Please take it again and send it with the caption \"{{ step }}\".",
    ),
    ("photo_held", "Got your photo. Which drop is it for? Send the drop number (e.g. DR12345678) within 30 minutes and it is filed there."),
    ("drop_submitted", "Thanks! {{ drop_number }} is submitted for review. You will hear from us if anything needs fixing."),
    ("drop_resubmitted", "Thanks! The fixes for {{ drop_number }} are in; a reviewer will check them again."),
    ("drop_not_ready", "{{ drop_number }} is not ready yet. Still missing: {{ missing | join(\", \") }}. Send the photos, then {{ drop_number }} DONE."),
    ("drop_waiting", "{{ drop_number }} is {{ status }}; nothing to do right now."),
    (
        "help",
        "Dropcheck commands:\n\
• Send a drop number (e.g. DR12345678) to start or continue a drop\n\
• Send one photo per step; caption \"3\" or \"step 3\" picks the step\n\
• DR12345678 DONE — submit the drop (or resubmit after fixes)\n\
• /status — your active drop\n\
• /drops — your open drops\n\
• /project NAME — switch project\n\
• /clear — forget the active drop\n\
• STOP / START — stop or resume messages",
    ),
    (
        "status",
        "{% if drop_number %}Active drop {{ drop_number }} ({{ project }}, {{ status }}): {{ done }} of {{ total }} steps have a photo.\
{% if missing %} Missing: {{ missing | join(\", \") }}.{% endif %}{% else %}No active drop. Send a drop number to start.{% endif %}",
    ),
    ("drops", "{% if drops %}Your open drops:\n{% for d in drops %}• {{ d.number }} — {{ d.status }}\n{% endfor %}{% else %}You have no open drops.{% endif %}"),
    ("project_set", "Project set to {{ project }}. Send a drop number to start."),
    ("project_unknown", "There is no project called \"{{ name }}\". Projects: {{ projects | join(\", \") }}."),
    ("cleared", "Cleared. Send a drop number to start again."),
    ("stopped", "You will not get messages from Dropcheck any more. Send START to resume."),
    ("started", "Welcome back: you will get Dropcheck messages again."),
    ("drop_refused", "{{ message }}"),
    ("hint", "Sorry, I did not understand that. Send a drop number, a photo, or /help for the commands."),
    ("unsupported", "I cannot use {{ kind }} messages. Send a photo, a drop number, or /help."),
    ("media_failed", "Your photo could not be downloaded. Please send it again."),
    (
        "attachment_received",
        "Got your file ({{ mime_type }}). It is kept {% if drop_number %}with {{ drop_number }} {% endif %}for the reviewer; checklist steps need photos.",
    ),
];

/// Built-in bodies an earlier version seeded, by name, with the sample variables of the
/// current one: a stored template still equal to one of these (never edited) is updated to
/// the current built-in at start-up; an edited one is left alone.
pub const SUPERSEDED: &[(&str, &str)] = &[
    (
        "photo_ack",
        "Got {{ count }} photo{% if count != 1 %}s{% endif %} for {{ drop_number }}: step{% if steps | length != 1 %}s{% endif %} {{ steps | join(\", \") }} ✓. \
{% if with_qa %}Every step has a photo: {{ drop_number }} is now with QA for review. You can still send photos; a caption like \"3\" puts one on step 3.\
{% elif next_step %}Next: step {{ next_step.number }} — {{ next_step.name }}{% else %}Every step has a photo. Send {{ drop_number }} DONE when you are finished.{% endif %}",
    ),
    (
        "drop_opened",
        "Drop {{ drop_number }} ({{ project }}): {{ done }} of {{ total }} steps have a photo.\n\
{% if next_step %}Next: step {{ next_step.number }} — {{ next_step.name }}. Send one photo per step; a caption like \"3\" puts it on step 3.\n\
{% else %}Every step has a photo. Send {{ drop_number }} DONE when you are finished.\n{% endif %}\
{% if missing %}Still missing: {{ missing | join(\", \") }}{% endif %}",
    ),
    (
        "photo_ack",
        "Got {{ count }} photo{% if count != 1 %}s{% endif %} for {{ drop_number }}: step{% if steps | length != 1 %}s{% endif %} {{ steps | join(\", \") }} ✓. \
{% if next_step %}Next: step {{ next_step.number }} — {{ next_step.name }}{% else %}Every step has a photo. Send {{ drop_number }} DONE when you are finished.{% endif %}",
    ),
];

/// The built-in body of a template, if `name` is one.
pub fn built_in(name: &str) -> Option<&'static str> {
    BUILT_IN.iter().find(|(n, _)| *n == name).map(|(_, b)| *b)
}

/// The body a template ships with: a bot reply's or a notification's.
pub fn shipped(name: &str) -> Option<&'static str> {
    built_in(name).or_else(|| NOTIFICATIONS.iter().find(|(n, _)| *n == name).map(|(_, b)| *b))
}

/// Renders a template body with a context; an unknown variable or a syntax error is an
/// input error naming the problem (what the template editor shows).
pub fn render(name: &str, body: &str, ctx: minijinja::Value) -> CoreResult<String> {
    env().render_str(body, ctx).map(|s| s.trim().to_string()).map_err(|e| CoreError::Internal(format!("template {name}: {e}")))
}

#[derive(Serialize)]
struct FeedbackStep<'a> {
    number: i64,
    name: &'a str,
    problem: &'static str,
    reason: Option<&'a str>,
    note: &'a str,
}

/// The one template environment (built once: every reply renders through it).
fn env() -> &'static Environment<'static> {
    static ENV: std::sync::LazyLock<Environment<'static>> = std::sync::LazyLock::new(|| {
        let mut env = Environment::new();
        // A variable the template names but the context lacks is an error, not silent blank text.
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_trim_blocks(true);
        env
    });
    &ENV
}

/// The variables of the feedback message for the drop's currently rejected steps (the
/// `drop_feedback` template renders them), or why there is nothing to send.
pub fn feedback_vars(drop: &DropDetail, reasons: &[Reason]) -> CoreResult<minijinja::Value> {
    let steps: Vec<FeedbackStep> = drop
        .rejected_steps()
        .map(|s| FeedbackStep {
            number: s.number,
            name: &s.name,
            problem: s.verdict.feedback_label(),
            reason: s.reason.as_deref().and_then(|c| reasons.iter().find(|r| r.code == c)).map(|r| r.label.as_str()),
            note: &s.note,
        })
        .collect();
    if steps.is_empty() {
        return Err(CoreError::conflict(
            "nothing_to_fix",
            "No step is marked missing, retake or rework; mark at least one before marking the drop incomplete.",
        ));
    }
    let contractor_name = drop.contractor.as_ref().map(|c| c.name.as_str()).filter(|n| !n.is_empty());
    Ok(context! { drop_number => &drop.drop_number, project => &drop.project, contractor_name, steps })
}

/// The approved provider templates a message template maps to, for sends outside WhatsApp's
/// 24-hour window (WhatsApp allows free-form messages only within 24 hours of the contact's
/// last message). Stored as JSON in `message_template.provider_template`.
/// Each parameter is a minijinja expression over the message's variables, e.g.
/// `drop_number` or `steps | map(attribute="number") | join(", ")`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct ProviderTemplates {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<MetaTemplate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub twilio: Option<TwilioContent>,
}

/// A Meta message template: its name, language code and body parameters in order.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct MetaTemplate {
    pub name: String,
    pub language: String,
    #[serde(default)]
    pub params: Vec<String>,
}

/// A Twilio Content template: its `ContentSid` and the expressions of variables 1, 2, ….
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct TwilioContent {
    pub content_sid: String,
    #[serde(default)]
    pub variables: Vec<String>,
}

impl ProviderTemplates {
    /// Parses and checks the stored JSON (names, SIDs and that every parameter compiles).
    pub fn parse(json: &str) -> Result<Self, crate::InputError> {
        use crate::InputError;
        let t: Self = serde_json::from_str(json)
            .map_err(|e| InputError::new("invalid_provider_template", format!("the provider template is not valid: {e}")))?;
        if let Some(m) = &t.meta {
            let name_ok = !m.name.is_empty()
                && m.name.len() <= 512
                && m.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !name_ok {
                return Err(InputError::new("invalid_provider_template", "a Meta template name has lower-case letters, digits and _"));
            }
            let lang_ok = (2..=15).contains(&m.language.len()) && m.language.chars().all(|c| c.is_ascii_alphabetic() || c == '_');
            if !lang_ok {
                return Err(InputError::new("invalid_provider_template", "a Meta template language is a code such as en or en_US"));
            }
        }
        if let Some(tw) = &t.twilio {
            let sid_ok = tw.content_sid.len() == 34
                && tw.content_sid.starts_with("HX")
                && tw.content_sid[2..].chars().all(|c| c.is_ascii_hexdigit());
            if !sid_ok {
                return Err(InputError::new("invalid_provider_template", "a Twilio ContentSid is HX followed by 32 hex digits"));
            }
        }
        let env = env();
        for expr in t.meta.iter().flat_map(|m| &m.params).chain(t.twilio.iter().flat_map(|t| &t.variables)) {
            env.compile_expression(expr)
                .map_err(|e| InputError::new("invalid_provider_template", format!("the parameter \"{expr}\" is not an expression: {e}")))?;
        }
        Ok(t)
    }

    pub fn is_empty(&self) -> bool {
        self.meta.is_none() && self.twilio.is_none()
    }
}

/// Evaluates template parameters over a message's stored variables. WhatsApp refuses
/// parameters with line breaks, tabs or runs of spaces, so those are folded to single spaces.
pub fn render_params(exprs: &[String], vars: &serde_json::Value) -> CoreResult<Vec<String>> {
    let env = env();
    let ctx = minijinja::Value::from_serialize(vars);
    exprs
        .iter()
        .map(|expr| {
            let value = env
                .compile_expression(expr)
                .and_then(|e| e.eval(ctx.clone()))
                .map_err(|e| CoreError::Internal(format!("template parameter \"{expr}\": {e}")))?;
            if value.is_undefined() {
                return Err(CoreError::Internal(format!("template parameter \"{expr}\": names a variable this message does not have")));
            }
            let text = if value.is_none() { String::new() } else { value.to_string() };
            let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
            // An empty parameter is refused too.
            Ok(if text.is_empty() { "-".to_string() } else { text })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_templates_are_checked_and_their_parameters_rendered() {
        let ok = r#"{"twilio": {"content_sid": "HX0123456789abcdef0123456789ABCDEF", "variables": ["drop_number", "steps | join(', ')"]},
                     "meta": {"name": "drop_feedback_2", "language": "en_US", "params": ["drop_number"]}}"#;
        let t = ProviderTemplates::parse(ok).unwrap();
        assert_eq!(t.meta.as_ref().unwrap().params, vec!["drop_number"]);
        for (bad, why) in [
            (r#"{"twilio": {"content_sid": "MG0123456789abcdef0123456789abcdef"}}"#, "ContentSid"),
            (r#"{"meta": {"name": "Drop Feedback", "language": "en"}}"#, "name"),
            (r#"{"meta": {"name": "x", "language": "english!"}}"#, "language"),
            (r#"{"meta": {"name": "x", "language": "en", "params": ["drop_number |"]}}"#, "expression"),
            (r#"{"twilio": 5}"#, "not valid"),
        ] {
            let e = ProviderTemplates::parse(bad).unwrap_err();
            assert_eq!(e.code, "invalid_provider_template");
            assert!(e.message.contains(why), "{bad}: {}", e.message);
        }
        let vars = serde_json::json!({"drop_number": "DR1", "steps": ["3 Cable\nentry", "7   Meter"], "note": ""});
        let out = render_params(&["drop_number".into(), "steps | join(', ')".into(), "note".into()], &vars).unwrap();
        assert_eq!(out, vec!["DR1", "3 Cable entry, 7 Meter", "-"], "line breaks and space runs folded; empty becomes -");
        assert!(render_params(&["missing_var".into()], &vars).is_err(), "an unknown variable is an error, not blank");
    }
}

/// The predecessor notification service's business templates, for
/// `POST /api/notifications/send-message` with `message_type` = the name.
pub const NOTIFICATIONS: &[(&str, &str)] = &[
    ("order_confirmation", "Hi {{ customer_name }}, your order {{ order_id }} is confirmed{% if delivery_date %} for delivery on {{ delivery_date }}{% endif %}. Total: {{ total }}."),
    ("subscription_confirmation", "Hi {{ customer_name }}, your {{ plan }} subscription starts on {{ start_date }}. Thank you!"),
    ("delivery_confirmation", "Hi {{ customer_name }}, your delivery {{ reference }} was delivered{% if delivered_at %} at {{ delivered_at }}{% endif %}."),
    ("payment_confirmation", "Payment received! {{ amount }} for {{ reference }}. Thank you, {{ customer_name }}."),
    ("delivery_reminder", "Reminder: your delivery is scheduled for {{ delivery_date }}{% if customer_name %}, {{ customer_name }}{% endif %}."),
    ("verification", "Your Dropcheck verification code is {{ code }}. It expires in 10 minutes."),
    ("phone_linked", "This number is now linked to {{ email }} in Dropcheck."),
    ("phone_not_linked", "{{ reason }}"),
    (
        "drop_reminder",
        "Reminder{% if contractor_name %}, {{ contractor_name }}{% endif %}: drop {{ drop_number }} ({{ project }}) is still waiting for your fixes. \
Send the photos that were asked for, then {{ drop_number }} DONE.",
    ),
];

/// What each built-in template is for and the variables it is rendered with (JSON): the
/// editor previews with these, and a save is checked against them.
pub const SAMPLES: &[(&str, &str, &str)] = &[
    (
        "drop_feedback",
        "Sent when a reviewer marks a drop incomplete.",
        r#"{"contractor_name": "Thabo", "drop_number": "DR12345678", "project": "Velo Test", "steps": [{"number": 3, "name": "Cable entry outside", "problem": "photo missing", "reason": "No photo received", "note": ""}, {"number": 7, "name": "Power meter reading", "problem": "photo unusable, please retake", "reason": "Blurred or out of focus", "note": "Reading not visible"}]}"#,
    ),
    (
        "drop_opened",
        "Reply to a drop number: progress and the next step.",
        r#"{"drop_number": "DR12345678", "project": "Velo Test", "done": 4, "total": 12, "next_step": {"number": 5, "name": "Splice closure open"}, "missing": ["5 Splice closure open", "6 Splice tray"], "with_qa": false}"#,
    ),
    (
        "photo_ack",
        "One acknowledgment per burst of photos.",
        r#"{"count": 3, "drop_number": "DR12345678", "steps": [1, 2, 3], "next_step": {"number": 4, "name": "Pole or chamber"}, "with_qa": false, "retakes": [{"step": 2, "problem": "too dark", "advice": "switch on the light or use the flash"}]}"#,
    ),
    (
        "vision_retake",
        "Sent when the vision model suggests retaking a photo, on a step set to send such answers back.",
        r#"{"drop_number": "DR12345678", "step": 7, "step_name": "Power meter reading", "problems": ["reading not legible"]}"#,
    ),
    ("photo_held", "A photo arrived before any drop number.", "{}"),
    ("drop_submitted", "DONE on a complete drop.", r#"{"drop_number": "DR12345678"}"#),
    ("drop_resubmitted", "DONE after the fixes.", r#"{"drop_number": "DR12345678"}"#),
    (
        "drop_not_ready",
        "DONE while steps are missing.",
        r#"{"drop_number": "DR12345678", "missing": ["3 Cable entry outside", "7 Power meter reading"]}"#,
    ),
    ("drop_waiting", "A drop that waits for the reviewer.", r#"{"drop_number": "DR12345678", "status": "unreviewed"}"#),
    ("help", "/help", "{}"),
    (
        "status",
        "/status",
        r#"{"drop_number": "DR12345678", "project": "Velo Test", "status": "collecting", "done": 4, "total": 12, "missing": ["5 Splice closure open"]}"#,
    ),
    (
        "drops",
        "/drops",
        r#"{"drops": [{"number": "DR12345678", "status": "collecting"}, {"number": "DR12345679", "status": "incomplete"}]}"#,
    ),
    ("project_set", "/project NAME", r#"{"project": "Velo Test"}"#),
    ("project_unknown", "/project with an unknown name.", r#"{"name": "Velo", "projects": ["Velo Test", "Metro North"]}"#),
    ("cleared", "/clear", "{}"),
    ("stopped", "STOP (required by WhatsApp).", "{}"),
    ("started", "START", "{}"),
    (
        "drop_refused",
        "A drop number the project does not accept, and similar refusals.",
        r#"{"message": "DR123 does not match the project's drop number pattern."}"#,
    ),
    ("hint", "Any text the bot does not understand.", "{}"),
    ("unsupported", "A location, sticker, reaction or other unhandled type.", r#"{"kind": "location"}"#),
    ("media_failed", "A photo that could not be downloaded.", "{}"),
    ("attachment_received", "A file that is not a photo.", r#"{"mime_type": "application/pdf", "drop_number": "DR12345678"}"#),
    (
        "order_confirmation",
        "Notification: order confirmed.",
        r#"{"customer_name": "John Doe", "order_id": "order_123", "delivery_date": "2026-02-01", "total": "R 200"}"#,
    ),
    (
        "subscription_confirmation",
        "Notification: subscription started.",
        r#"{"customer_name": "John Doe", "plan": "Daily milk", "start_date": "2026-02-01"}"#,
    ),
    (
        "delivery_confirmation",
        "Notification: delivered.",
        r#"{"customer_name": "John Doe", "reference": "order_123", "delivered_at": "08:15"}"#,
    ),
    (
        "payment_confirmation",
        "Notification: payment received.",
        r#"{"customer_name": "John Doe", "amount": "R 200", "reference": "invoice 42"}"#,
    ),
    ("delivery_reminder", "Notification: delivery reminder.", r#"{"customer_name": "John Doe", "delivery_date": "2026-02-01"}"#),
    ("verification", "A phone-linking code (when sent by message).", r#"{"code": "123456"}"#),
    ("phone_linked", "VERIFY with the right code.", r#"{"email": "qa@example.com"}"#),
    ("phone_not_linked", "VERIFY that did not link.", r#"{"reason": "That code is not right; 4 attempts left."}"#),
    (
        "drop_reminder",
        "Sent by the automation \"Remind the contractor when a drop has been Incomplete for 24 hours\" (Automations).",
        r#"{"drop_number": "DR12345678", "project": "Velo Test", "status": "incomplete", "from": null, "round": 1, "contractor_name": "Thabo", "contractor_phone": "+27640412391"}"#,
    ),
];

/// The sample variables and description of a built-in template.
pub fn sample(name: &str) -> Option<(&'static str, &'static str)> {
    SAMPLES.iter().find(|(n, _, _)| *n == name).map(|(_, d, s)| (*d, *s))
}

/// Renders a template body with sample variables (JSON), as the editor's preview and every
/// save do: a syntax error (with its line) or a variable the samples lack is an input error.
pub fn check(body: &str, sample_json: &str) -> Result<String, crate::InputError> {
    use crate::InputError;
    let vars: serde_json::Value = serde_json::from_str(if sample_json.trim().is_empty() { "{}" } else { sample_json })
        .map_err(|e| InputError::new("invalid_sample", format!("the sample variables are not valid JSON: {e}")))?;
    if !vars.is_object() {
        return Err(InputError::new("invalid_sample", "the sample variables are a JSON object, e.g. {\"drop_number\": \"DR12345678\"}"));
    }
    if body.trim().is_empty() || body.chars().count() > 1600 {
        return Err(InputError::new("invalid_template", "a template needs 1–1600 characters"));
    }
    let env = env();
    let tmpl = env.template_from_str(body).map_err(|e| template_error(&e))?;
    let out = tmpl.render(minijinja::Value::from_serialize(&vars)).map_err(|e| template_error(&e))?;
    Ok(out.trim().to_string())
}

fn template_error(e: &minijinja::Error) -> crate::InputError {
    use minijinja::ErrorKind;
    let line = e.line().map(|l| format!(" (line {l})")).unwrap_or_default();
    let detail = e.detail().map(str::to_string).unwrap_or_else(|| e.kind().to_string());
    match e.kind() {
        ErrorKind::SyntaxError | ErrorKind::BadEscape => crate::InputError::new("template_syntax", format!("Syntax error{line}: {detail}")),
        ErrorKind::UndefinedError => crate::InputError::new(
            "unknown_variable",
            format!(
                "The template uses a variable this message does not have{line}: {detail}. Check the spelling against the sample variables."
            ),
        ),
        _ => crate::InputError::new("template_error", format!("The template cannot be rendered{line}: {detail}")),
    }
}
