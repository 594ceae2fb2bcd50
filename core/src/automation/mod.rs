//! Automation rules (issue 14): a trigger, conditions and actions, written as JSON (the API
//! takes it and the editor writes it). This module is the rule's shape, its checks on save
//! and its evaluation, all pure; `store::automation` keeps rules, records domain events and
//! runs rules inside the transaction of the change that caused them.
//!
//! ```json
//! {"name": "Remind after 24 h", "enabled": true,
//!  "trigger": {"type": "drop.status_held", "status": "incomplete", "minutes": 1440},
//!  "conditions": {"all": [{"field": "project", "op": "eq", "value": "Velo Test"}]},
//!  "actions": [{"type": "send_template", "template": "drop_reminder", "to": "contact"}]}
//! ```

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

use crate::domain::{DropStatus, Phone};
use crate::error::InputError;

mod check;
mod context;
mod eval;
pub mod schedule;
pub(crate) use check::compile_regex;
pub use check::{check_event_type, parse_at};
pub use context::{builtin_reminder, drop_context, sample_context, BUILTIN_REMINDER};
pub(crate) use eval::env;
pub use eval::{condition_result, render_text, trigger_matches, Event};

/// Events caused by a rule's own actions carry a depth one more than the event that ran the
/// rule; rules ignore events this deep (a loop guard).
pub const MAX_DEPTH: i64 = 3;
/// The longest a status may be held before a rule fires: a year.
pub const MAX_HELD_MINUTES: u32 = 525_600;
/// The longest a delay action waits: 30 days.
pub const MAX_DELAY_MINUTES: u32 = 43_200;
const MAX_ACTIONS: usize = 10;
const MAX_KEYWORDS: usize = 50;
/// The compiled size a keyword regex may take (the `regex` crate is linear-time; this
/// bounds its memory).
const REGEX_SIZE_LIMIT: usize = 256 * 1024;

/// A rule as the API takes it and returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    pub name: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    pub trigger: Trigger,
    #[serde(default, skip_serializing_if = "Conditions::is_empty")]
    pub conditions: Conditions,
    pub actions: Vec<ActionSpec>,
    /// A rule that ran (its conditions held) stops the later rules for the same event.
    #[serde(default, skip_serializing_if = "is_false")]
    pub stop_processing: bool,
}

fn yes() -> bool {
    true
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// What starts a rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum Trigger {
    /// A drop moved between statuses (either side may be left open).
    #[serde(rename = "drop.status_changed")]
    DropStatusChanged {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<DropStatus>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<DropStatus>,
    },
    /// A drop has been in `status` for `minutes` (once per episode of that status).
    #[serde(rename = "drop.status_held")]
    DropStatusHeld { status: DropStatus, minutes: u32 },
    /// A contractor's text that is no command, drop number or STOP/START.
    #[serde(rename = "message.inbound")]
    MessageInbound {
        #[serde(rename = "match")]
        mode: MatchMode,
        keywords: Vec<String>,
    },
    /// An event another system posted (`POST /api/v1/events` with this `type`).
    #[serde(rename = "api.event")]
    ApiEvent { event: String },
    /// A cron schedule in a time zone: each instant runs once across every server. Instants
    /// missed while no server ran are skipped, or with `catch_up` run late (within a day, at
    /// most 100).
    /// A tag was added to a contact (this one, or any when `tag` is left out).
    #[serde(rename = "contact.tag_added")]
    ContactTagAdded {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tag: Option<String>,
    },
    /// A tag was removed from a contact.
    #[serde(rename = "contact.tag_removed")]
    ContactTagRemoved {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tag: Option<String>,
    },
    /// A contact was created (by a first message, the API, an import that asks for rules…).
    #[serde(rename = "contact.created")]
    ContactCreated {},
    /// A contact's name, consent, birthday, time zone, muted types or an attribute changed
    /// (`field`: only when that one did).
    #[serde(rename = "contact.updated")]
    ContactUpdated {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        field: Option<String>,
    },
    /// A contact opted out (sent STOP, or was opted out by the API or a user).
    #[serde(rename = "contact.opted_out")]
    ContactOptedOut {},
    /// A contact's birthday, at `at` (HH:MM) in the contact's time zone, or `time_zone` when
    /// the contact has none: once per contact per year.
    #[serde(rename = "contact.birthday")]
    ContactBirthday {
        #[serde(default = "nine")]
        at: String,
        #[serde(default = "utc")]
        time_zone: String,
    },
    #[serde(rename = "schedule.cron")]
    ScheduleCron {
        cron: String,
        #[serde(default = "utc")]
        time_zone: String,
        #[serde(default, skip_serializing_if = "is_false")]
        catch_up: bool,
    },
}

fn utc() -> String {
    "UTC".into()
}

fn nine() -> String {
    "09:00".into()
}

impl Trigger {
    /// The trigger's type as stored (and as in the JSON).
    pub fn kind(&self) -> &'static str {
        match self {
            Trigger::DropStatusChanged { .. } => "drop.status_changed",
            Trigger::DropStatusHeld { .. } => "drop.status_held",
            Trigger::MessageInbound { .. } => "message.inbound",
            Trigger::ApiEvent { .. } => "api.event",
            Trigger::ScheduleCron { .. } => "schedule.cron",
            Trigger::ContactTagAdded { .. } => "contact.tag_added",
            Trigger::ContactTagRemoved { .. } => "contact.tag_removed",
            Trigger::ContactCreated {} => "contact.created",
            Trigger::ContactUpdated { .. } => "contact.updated",
            Trigger::ContactOptedOut {} => "contact.opted_out",
            Trigger::ContactBirthday { .. } => "contact.birthday",
        }
    }

    /// Whether the trigger is about a contact (its context has the contact's attributes).
    pub fn is_contact(&self) -> bool {
        self.kind().starts_with("contact.")
    }

    /// The context variables a rule with this trigger gets (`None`: an API event's data,
    /// whatever the posting system sends).
    pub fn fields(&self) -> Option<&'static [&'static str]> {
        match self {
            Trigger::DropStatusChanged { .. } | Trigger::DropStatusHeld { .. } => Some(DROP_FIELDS),
            Trigger::MessageInbound { .. } => Some(INBOUND_FIELDS),
            Trigger::ScheduleCron { .. } => Some(SCHEDULE_FIELDS),
            Trigger::ApiEvent { .. } => None,
            _ => Some(CONTACT_FIELDS),
        }
    }

    /// In words, for the rules list.
    pub fn describe(&self) -> String {
        match self {
            Trigger::DropStatusChanged { from, to } => format!(
                "A drop moves {}{}",
                from.map(|s| format!("from {} ", s.label())).unwrap_or_default(),
                to.map(|s| format!("to {}", s.label())).unwrap_or_else(|| "to any status".into())
            ),
            Trigger::DropStatusHeld { status, minutes } => format!("A drop has been {} for {}", status.label(), minutes_text(*minutes)),
            Trigger::MessageInbound { mode, keywords } => format!("A message {} {}", mode.describe(), keywords.join(" / ")),
            Trigger::ApiEvent { event } => format!("Another system posts the event {event}"),
            Trigger::ContactTagAdded { tag } => format!("A contact is tagged {}", tag.as_deref().unwrap_or("(any tag)")),
            Trigger::ContactTagRemoved { tag } => format!("A contact's tag {} is removed", tag.as_deref().unwrap_or("(any)")),
            Trigger::ContactCreated {} => "A contact is created".into(),
            Trigger::ContactUpdated { field } => match field {
                Some(f) => format!("A contact's {f} changes"),
                None => "A contact changes".into(),
            },
            Trigger::ContactOptedOut {} => "A contact opts out".into(),
            Trigger::ContactBirthday { at, time_zone } => format!("A contact's birthday, at {at} (their time zone, else {time_zone})"),
            Trigger::ScheduleCron { cron, time_zone, .. } => match schedule::Schedule::parse(cron, time_zone) {
                Ok(s) => format!("{} ({time_zone})", s.describe()),
                Err(e) => e,
            },
        }
    }
}

/// "90 minutes" → "1 h 30 min"; whole days and hours in their own words.
pub fn minutes_text(m: u32) -> String {
    match (m / 1440, m % 1440 / 60, m % 60) {
        (0, 0, m) => format!("{m} minute{}", if m == 1 { "" } else { "s" }),
        (d, 0, 0) => format!("{d} day{}", if d == 1 { "" } else { "s" }),
        (0, h, 0) => format!("{h} hour{}", if h == 1 { "" } else { "s" }),
        (d, h, m) => format!("{}{h} h {m} min", if d > 0 { format!("{d} d ") } else { String::new() }),
    }
}

/// The variables of a drop trigger's context.
pub const DROP_FIELDS: &[&str] = &["drop_number", "project", "status", "from", "round", "contractor_name", "contractor_phone"];
/// The variables of a contact trigger's context (and the contact's attributes by key).
pub const CONTACT_FIELDS: &[&str] = crate::contacts::BASE_FIELDS;
/// The variables of a schedule's context: the instant, in the rule's time zone.
pub const SCHEDULE_FIELDS: &[&str] = &["scheduled_for", "time_zone"];
/// The variables of an inbound message's context.
pub const INBOUND_FIELDS: &[&str] = &["phone", "name", "text", "drop_number"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchMode {
    Exact,
    StartsWith,
    Contains,
    Regex,
}

impl MatchMode {
    fn describe(self) -> &'static str {
        match self {
            MatchMode::Exact => "is exactly",
            MatchMode::StartsWith => "starts with",
            MatchMode::Contains => "contains",
            MatchMode::Regex => "matches",
        }
    }
}

/// `all` must all hold and, when `any` has conditions, at least one of those.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conditions {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub all: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub any: Vec<Condition>,
    /// A Jinja2 expression over the variables that must also be true, e.g.
    /// `round > 1 and project in ["Velo Test", "North"]` (checked on save; a variable the
    /// event lacks is undefined, which is false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
}

impl Conditions {
    pub fn is_empty(&self) -> bool {
        self.all.is_empty() && self.any.is_empty() && self.expression.is_none()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    pub field: String,
    pub op: Op,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub value: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Eq,
    Ne,
    In,
    NotIn,
    Contains,
    StartsWith,
    Gt,
    Lt,
    Exists,
}

/// What a rule does, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum ActionSpec {
    /// A template (Settings → Templates), rendered with the trigger's context and `variables`
    /// (each a template text over that context), to `to`.
    #[serde(rename = "send_template")]
    SendTemplate {
        template: String,
        #[serde(default)]
        to: Recipient,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        variables: BTreeMap<String, String>,
    },
    /// A free text (a template text over the context) — only inside WhatsApp's 24-hour
    /// window; outside it the `fallback_template` goes instead, or the action is skipped.
    #[serde(rename = "send_text")]
    SendText {
        text: String,
        #[serde(default)]
        to: Recipient,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fallback_template: Option<String>,
    },
    /// A text (a template text over the context) to every user with a linked WhatsApp number.
    #[serde(rename = "notify_users")]
    NotifyUsers { text: String },
    /// The trigger's context to a registered webhook endpoint (signed, retried, logged), as
    /// `{"type": "automation.call_webhook", "timestamp", "data": {context}}`.
    #[serde(rename = "call_webhook")]
    CallWebhook { endpoint: i64 },
    /// Tags the trigger's contact (which records `contact.tag_added`).
    #[serde(rename = "add_tag")]
    AddTag { tag: String },
    /// Removes a tag from the trigger's contact.
    #[serde(rename = "remove_tag")]
    RemoveTag { tag: String },
    /// Sets a custom attribute of the trigger's contact (records `contact.updated`); a text
    /// value is a template text over the context, `null` removes the attribute.
    #[serde(rename = "set_attribute")]
    SetAttribute { key: String, value: Value },
    /// Waits this long before the next actions (the run is kept and a sweep resumes it).
    #[serde(rename = "delay")]
    Delay { minutes: u32 },
}

impl ActionSpec {
    pub fn kind(&self) -> &'static str {
        match self {
            ActionSpec::SendTemplate { .. } => "send_template",
            ActionSpec::SendText { .. } => "send_text",
            ActionSpec::NotifyUsers { .. } => "notify_users",
            ActionSpec::CallWebhook { .. } => "call_webhook",
            ActionSpec::AddTag { .. } => "add_tag",
            ActionSpec::RemoveTag { .. } => "remove_tag",
            ActionSpec::SetAttribute { .. } => "set_attribute",
            ActionSpec::Delay { .. } => "delay",
        }
    }
}

/// Who a message goes to: the trigger's contact (a drop's contractor, the sender of an
/// inbound message, an API event's `phone`), a fixed number, or every contact with a tag
/// (`tag:NAME`, at most [`MAX_TAG_RECIPIENTS`]; larger audiences are a broadcast's work).
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Recipient {
    #[default]
    Contact,
    Number(Phone),
    Tag(String),
}

/// The most contacts a rule's `tag:NAME` send reaches in one run.
pub const MAX_TAG_RECIPIENTS: i64 = 1000;

impl Serialize for Recipient {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Recipient::Contact => s.serialize_str("contact"),
            Recipient::Number(p) => s.serialize_str(p.as_str()),
            Recipient::Tag(t) => s.serialize_str(&format!("tag:{t}")),
        }
    }
}

impl<'de> Deserialize<'de> for Recipient {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        if raw == "contact" {
            return Ok(Recipient::Contact);
        }
        if let Some(tag) = raw.strip_prefix("tag:") {
            return crate::store::check_tag(tag)
                .map(Recipient::Tag)
                .map_err(|e| serde::de::Error::custom(format!("\"to\": {}", e.message)));
        }
        Phone::parse(&raw).map(Recipient::Number).map_err(|e| serde::de::Error::custom(format!("\"to\": {}", e.message)))
    }
}

impl RuleSpec {
    /// Reads a rule from JSON and checks it ([`RuleSpec::check`]); the error says what is wrong.
    pub fn parse(json: &Value) -> Result<Self, InputError> {
        let spec: RuleSpec =
            serde_json::from_value(json.clone()).map_err(|e| InputError::new("invalid_rule", format!("the rule is not valid: {e}")))?;
        spec.check()?;
        Ok(spec)
    }

    /// The webhook endpoints the actions call (the store checks they exist).
    pub fn endpoints(&self) -> Vec<i64> {
        self.actions.iter().filter_map(|a| if let ActionSpec::CallWebhook { endpoint } = a { Some(*endpoint) } else { None }).collect()
    }

    /// The templates the actions send (the store checks they exist).
    pub fn templates(&self) -> Vec<&str> {
        let mut out = vec![];
        for a in &self.actions {
            match a {
                ActionSpec::SendTemplate { template, .. } => out.push(template.as_str()),
                ActionSpec::SendText { fallback_template: Some(t), .. } => out.push(t.as_str()),
                _ => {}
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
