//! Evaluating rules against an event: does the trigger match, do the conditions hold, and
//! the texts an action renders. Pure and fast (no database), so it runs inside the
//! transaction of the change that caused the event.

use minijinja::{Environment, UndefinedBehavior};
use serde_json::Value;
use std::cmp::Ordering;

use super::{compile_regex, Condition, Conditions, MatchMode, Op, Trigger};
use crate::domain::DropStatus;

/// What happened, as rules see it.
#[derive(Debug, Clone)]
pub enum Event<'a> {
    DropStatusChanged {
        from: DropStatus,
        to: DropStatus,
    },
    /// A sweep found a drop held in `status` for at least `minutes`.
    DropStatusHeld {
        status: DropStatus,
        minutes: u32,
    },
    MessageInbound {
        text: &'a str,
    },
    ApiEvent {
        event: &'a str,
    },
    /// A tag was added to (or removed from) a contact.
    ContactTag {
        added: bool,
        tag: &'a str,
    },
    ContactCreated,
    /// These fields of a contact changed.
    ContactUpdated {
        changed: &'a [String],
    },
    ContactOptedOut,
    /// A sweep found a contact's birthday due.
    ContactBirthday,
}

impl Event<'_> {
    /// The trigger type this event runs.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::DropStatusChanged { .. } => "drop.status_changed",
            Event::DropStatusHeld { .. } => "drop.status_held",
            Event::MessageInbound { .. } => "message.inbound",
            Event::ApiEvent { .. } => "api.event",
            Event::ContactTag { added: true, .. } => "contact.tag_added",
            Event::ContactTag { added: false, .. } => "contact.tag_removed",
            Event::ContactCreated => "contact.created",
            Event::ContactUpdated { .. } => "contact.updated",
            Event::ContactOptedOut => "contact.opted_out",
            Event::ContactBirthday => "contact.birthday",
        }
    }
}

/// Whether the trigger is for this event (before conditions).
pub fn trigger_matches(trigger: &Trigger, event: &Event<'_>) -> bool {
    match (trigger, event) {
        (Trigger::DropStatusChanged { from, to }, Event::DropStatusChanged { from: f, to: t }) => {
            from.is_none_or(|s| s == *f) && to.is_none_or(|s| s == *t)
        }
        (Trigger::DropStatusHeld { status, minutes }, Event::DropStatusHeld { status: s, minutes: m }) => status == s && minutes <= m,
        (Trigger::MessageInbound { mode, keywords }, Event::MessageInbound { text }) => keyword_matches(*mode, keywords, text),
        (Trigger::ApiEvent { event }, Event::ApiEvent { event: e }) => event == e,
        (Trigger::ContactTagAdded { tag }, Event::ContactTag { added: true, tag: t })
        | (Trigger::ContactTagRemoved { tag }, Event::ContactTag { added: false, tag: t }) => {
            tag.as_deref().is_none_or(|want| want.trim().eq_ignore_ascii_case(t))
        }
        (Trigger::ContactCreated {}, Event::ContactCreated)
        | (Trigger::ContactOptedOut {}, Event::ContactOptedOut)
        | (Trigger::ContactBirthday { .. }, Event::ContactBirthday) => true,
        (Trigger::ContactUpdated { field }, Event::ContactUpdated { changed }) => match field {
            Some(f) => changed.iter().any(|c| c == f),
            None => !changed.is_empty(),
        },
        _ => false,
    }
}

/// Keywords are matched without regard to case, on the text with its spaces trimmed.
fn keyword_matches(mode: MatchMode, keywords: &[String], text: &str) -> bool {
    let text = text.trim().to_lowercase();
    keywords.iter().any(|k| {
        let k = k.trim().to_lowercase();
        match mode {
            MatchMode::Exact => text == k,
            MatchMode::StartsWith => text.starts_with(&k),
            MatchMode::Contains => text.contains(&k),
            // Checked on save; a pattern that no longer compiles matches nothing.
            MatchMode::Regex => compile_regex(&k).is_ok_and(|r| r.is_match(&text)),
        }
    })
}

/// Whether the conditions hold for a context. `Err` says why they could not be evaluated
/// (recorded as the run's `condition_error`).
pub fn condition_result(c: &Conditions, ctx: &Value) -> Result<bool, String> {
    for cond in &c.all {
        if !holds(cond, ctx)? {
            return Ok(false);
        }
    }
    if !c.any.is_empty() {
        let mut one = false;
        for cond in &c.any {
            if holds(cond, ctx)? {
                one = true;
                break;
            }
        }
        if !one {
            return Ok(false);
        }
    }
    match &c.expression {
        Some(e) => expression_holds(e, ctx),
        None => Ok(true),
    }
}

/// A condition expression's truth over the context (variables it names that the context
/// lacks are undefined: false, not an error).
pub(crate) fn expression_holds(e: &str, ctx: &Value) -> Result<bool, String> {
    static LENIENT: std::sync::LazyLock<Environment<'static>> = std::sync::LazyLock::new(|| {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Lenient);
        env
    });
    let expr = LENIENT.compile_expression(e).map_err(|err| format!("the expression does not compile: {err}"))?;
    expr.eval(minijinja::Value::from_serialize(ctx)).map(|v| v.is_true()).map_err(|err| format!("the expression failed: {err}"))
}

fn holds(c: &Condition, ctx: &Value) -> Result<bool, String> {
    let actual = ctx.get(&c.field).unwrap_or(&Value::Null);
    Ok(match c.op {
        Op::Exists => {
            let want = c.value.as_bool().unwrap_or(true);
            present(actual) == want
        }
        Op::Eq => same(actual, &c.value),
        Op::Ne => !same(actual, &c.value),
        Op::In => list(&c.value)?.iter().any(|v| same(actual, v)),
        Op::NotIn => !list(&c.value)?.iter().any(|v| same(actual, v)),
        Op::Contains => match actual {
            Value::String(s) => s.to_lowercase().contains(&text(&c.value).to_lowercase()),
            Value::Array(items) => items.iter().any(|v| same(v, &c.value)),
            _ => false,
        },
        Op::StartsWith => text(actual).to_lowercase().starts_with(&text(&c.value).to_lowercase()) && present(actual),
        Op::Gt => compare(actual, &c.value) == Some(Ordering::Greater),
        Op::Lt => compare(actual, &c.value) == Some(Ordering::Less),
    })
}

fn present(v: &Value) -> bool {
    !(v.is_null() || v.as_str().is_some_and(str::is_empty))
}

fn list(v: &Value) -> Result<&Vec<Value>, String> {
    v.as_array().ok_or_else(|| "in / not_in need a list".to_string())
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Equal as values, with texts compared without regard to case and a number equal to the
/// same number written as text ("3" and 3).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) => x.eq_ignore_ascii_case(y),
        (Value::Number(_), Value::String(_)) | (Value::String(_), Value::Number(_)) => number(a).is_some() && number(a) == number(b),
        (Value::Number(_), Value::Number(_)) => number(a) == number(b),
        _ => a == b,
    }
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Numbers compare as numbers; otherwise texts compare as texts (ISO dates order correctly).
fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (number(a), number(b)) {
        (Some(x), Some(y)) => x.partial_cmp(&y),
        _ if a.is_string() && b.is_string() => Some(text(a).cmp(&text(b))),
        _ => None,
    }
}

/// The environment action texts render in: like the message templates, a variable the
/// context lacks is an error, not blank text; `fuel` is not compiled in, so the texts are
/// kept short (checked on save) and loops over context lists are bounded by the context.
pub(crate) fn env() -> &'static Environment<'static> {
    static ENV: std::sync::LazyLock<Environment<'static>> = std::sync::LazyLock::new(|| {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env
    });
    &ENV
}

/// Renders an action's text over the trigger's context.
pub fn render_text(text: &str, ctx: &Value) -> Result<String, String> {
    env().render_str(text, minijinja::Value::from_serialize(ctx)).map(|s| s.trim().to_string()).map_err(|e| e.to_string())
}
