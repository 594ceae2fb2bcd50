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
{% if next_step %}Next: step {{ next_step.number }} — {{ next_step.name }}. Send one photo per step; a caption like \"3\" puts it on step 3.\n\
{% else %}Every step has a photo. Send {{ drop_number }} DONE when you are finished.\n{% endif %}\
{% if missing %}Still missing: {{ missing | join(\", \") }}{% endif %}",
    ),
    (
        "photo_ack",
        "Got {{ count }} photo{% if count != 1 %}s{% endif %} for {{ drop_number }}: step{% if steps | length != 1 %}s{% endif %} {{ steps | join(\", \") }} ✓. \
{% if next_step %}Next: step {{ next_step.number }} — {{ next_step.name }}{% else %}Every step has a photo. Send {{ drop_number }} DONE when you are finished.{% endif %}",
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

/// The built-in body of a template, if `name` is one.
pub fn built_in(name: &str) -> Option<&'static str> {
    BUILT_IN.iter().find(|(n, _)| *n == name).map(|(_, b)| *b)
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

fn env() -> Environment<'static> {
    let mut env = Environment::new();
    // A variable the template names but the context lacks is an error, not silent blank text.
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_trim_blocks(true);
    env
}

/// Renders the feedback message for the drop's currently rejected steps.
pub fn render_feedback(drop: &DropDetail, reasons: &[Reason]) -> CoreResult<String> {
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
    env()
        .render_str(DROP_FEEDBACK, context! { drop_number => &drop.drop_number, project => &drop.project, contractor_name, steps })
        .map(|s| s.trim().to_string())
        .map_err(|e| CoreError::Internal(format!("feedback template: {e}")))
}
