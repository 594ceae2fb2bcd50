//! Message templates (Jinja2 syntax through minijinja). This issue ships the built-in
//! drop-feedback template; editing templates in settings comes with the templates page.

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
