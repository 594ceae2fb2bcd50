//! A rule's checks on save: everything that can be checked without the database.

use super::*;

impl RuleSpec {
    /// Everything that can be checked without the database: the name, the trigger's
    /// settings, every condition's field and operator, every action's texts (they must
    /// compile and use only the trigger's variables). Templates are checked by the store,
    /// and so are a contact trigger's attribute names ([`RuleSpec::check_with`]).
    pub fn check(&self) -> Result<(), InputError> {
        self.check_with(None)
    }

    /// [`RuleSpec::check`] knowing the defined contact attributes: a contact trigger's
    /// conditions and texts may use those keys besides the contact's fields (`None`: not
    /// known here; any key passes and the store checks again).
    pub fn check_with(&self, attributes: Option<&[String]>) -> Result<(), InputError> {
        let bad = |msg: String| Err(InputError::new("invalid_rule", msg));
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 120 {
            return bad("a rule needs a name of 1–120 characters".into());
        }
        match &self.trigger {
            Trigger::DropStatusHeld { minutes, .. } if *minutes == 0 || *minutes > MAX_HELD_MINUTES => {
                return bad(format!("\"minutes\" is 1–{MAX_HELD_MINUTES} (a year)"));
            }
            Trigger::DropStatusChanged { from: Some(f), to: Some(t) } if f == t => {
                return bad("\"from\" and \"to\" are the same status: such a change never happens".into());
            }
            Trigger::MessageInbound { mode, keywords } => {
                if keywords.is_empty() || keywords.len() > MAX_KEYWORDS || keywords.iter().any(|k| k.trim().is_empty() || k.len() > 200) {
                    return bad(format!("\"keywords\" needs 1–{MAX_KEYWORDS} non-empty keywords of up to 200 characters"));
                }
                if *mode == MatchMode::Regex {
                    for k in keywords {
                        compile_regex(k)
                            .map_err(|e| InputError::new("invalid_rule", format!("keyword /{k}/ is not a usable regex: {e}")))?;
                    }
                }
            }
            Trigger::ApiEvent { event } if !valid_event_type(event) => {
                return bad("\"event\" is a name like order.paid (letters, digits, . _ -; up to 100)".into());
            }
            Trigger::ContactTagAdded { tag: Some(t) } | Trigger::ContactTagRemoved { tag: Some(t) } => {
                crate::store::check_tag(t).map_err(|e| InputError::new("invalid_rule", e.message))?;
            }
            Trigger::ScheduleCron { cron, time_zone, .. } => {
                schedule::Schedule::parse(cron, time_zone).map_err(|e| InputError::new("invalid_rule", e))?;
            }
            Trigger::ContactBirthday { at, time_zone } => {
                parse_at(at).map_err(|e| InputError::new("invalid_rule", e))?;
                crate::contacts::check_time_zone(time_zone).map_err(|e| InputError::new("invalid_rule", e.message))?;
            }
            Trigger::ContactUpdated { field: Some(f) } => {
                let attribute = crate::contacts::check_key(f).is_ok() && attributes.is_none_or(|a| a.contains(f));
                if !(CONTACT_FIELDS.contains(&f.as_str()) || attribute) {
                    return bad(format!("\"field\" {f} is not a contact field or a defined attribute"));
                }
            }
            _ => {}
        }
        let with_attrs: Option<Vec<&str>> = match (self.trigger.fields(), attributes) {
            (Some(base), _) if !self.trigger.is_contact() => Some(base.to_vec()),
            (Some(base), Some(attrs)) => Some(base.iter().copied().chain(attrs.iter().map(String::as_str)).collect()),
            _ => None,
        };
        let fields = with_attrs.as_deref();
        for c in self.conditions.all.iter().chain(&self.conditions.any) {
            if let Some(fields) = fields {
                if !fields.contains(&c.field.as_str()) {
                    return bad(format!("condition field \"{}\" is not one of this trigger's: {}", c.field, fields.join(", ")));
                }
            }
            let value_ok = match c.op {
                Op::Exists => c.value.is_null() || c.value.is_boolean(),
                Op::In | Op::NotIn => c.value.is_array(),
                Op::Gt | Op::Lt => c.value.is_number() || c.value.is_string(),
                Op::Contains | Op::StartsWith => c.value.is_string(),
                Op::Eq | Op::Ne => !c.value.is_null(),
            };
            if !value_ok {
                return bad(format!(
                    "condition on \"{}\": the value does not suit {:?} (in/not_in take a list, contains/starts_with a text)",
                    c.field, c.op
                ));
            }
        }
        if let Some(e) = &self.conditions.expression {
            if e.trim().is_empty() || e.len() > 1000 {
                return bad("the condition expression is 1–1000 characters".into());
            }
            let env = eval::env();
            let expr = env
                .compile_expression(e)
                .map_err(|err| InputError::new("invalid_rule", format!("the condition expression does not compile: {err}")))?;
            if let Some(fields) = fields {
                let mut unknown: Vec<String> =
                    expr.undeclared_variables(false).into_iter().filter(|v| !fields.contains(&v.as_str())).collect();
                if !unknown.is_empty() {
                    unknown.sort();
                    return bad(format!("the condition expression uses {} — this trigger has: {}", unknown.join(", "), fields.join(", ")));
                }
            }
        }
        if self.actions.is_empty() || self.actions.len() > MAX_ACTIONS {
            return bad(format!("a rule has 1–{MAX_ACTIONS} actions"));
        }
        if matches!(self.actions.last(), Some(ActionSpec::Delay { .. })) {
            return bad("a delay is followed by the actions it delays; this rule ends with one".into());
        }
        for a in &self.actions {
            let set_value;
            let texts: Vec<&String> = match a {
                ActionSpec::SendTemplate { variables, .. } => variables.values().collect(),
                ActionSpec::SendText { text, .. } | ActionSpec::NotifyUsers { text } => vec![text],
                ActionSpec::CallWebhook { .. } => vec![],
                ActionSpec::AddTag { tag } | ActionSpec::RemoveTag { tag } => {
                    crate::store::check_tag(tag)
                        .map_err(|e| InputError::new("invalid_rule", format!("{} action: {}", a.kind(), e.message)))?;
                    vec![]
                }
                ActionSpec::Delay { minutes } => {
                    if *minutes == 0 || *minutes > MAX_DELAY_MINUTES {
                        return bad(format!("a delay is 1–{MAX_DELAY_MINUTES} minutes (30 days)"));
                    }
                    vec![]
                }
                ActionSpec::SetAttribute { key, value } => {
                    crate::contacts::check_key(key)
                        .map_err(|e| InputError::new("invalid_rule", format!("set_attribute: {}", e.message)))?;
                    if attributes.is_some_and(|a| !a.contains(key)) {
                        return bad(format!("set_attribute: there is no attribute {key} (define it first)"));
                    }
                    if !(value.is_string() || value.is_number() || value.is_boolean() || value.is_null()) {
                        return bad("set_attribute: the value is a text, a number, true/false or null".into());
                    }
                    set_value = value.as_str().map(str::to_string);
                    set_value.iter().collect()
                }
            };
            for t in texts {
                check_text(t, fields).map_err(|e| InputError::new("invalid_rule", format!("{} action: {e}", a.kind())))?;
            }
            if let ActionSpec::SendText { text, .. } | ActionSpec::NotifyUsers { text } = a {
                if text.trim().is_empty() || text.chars().count() > 1600 {
                    return bad(format!("the {} action needs a text of 1–1600 characters", a.kind()));
                }
            }
        }
        Ok(())
    }
}

fn valid_event_type(t: &str) -> bool {
    !t.is_empty() && t.len() <= 100 && t.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Checks an API event's type (`POST /api/v1/events`).
pub fn check_event_type(t: &str) -> Result<(), InputError> {
    if valid_event_type(t) {
        Ok(())
    } else {
        Err(InputError::new("invalid_event_type", "\"type\" is a name like order.paid (letters, digits, . _ -; up to 100)"))
    }
}

pub(crate) fn compile_regex(k: &str) -> Result<regex::Regex, regex::Error> {
    regex::RegexBuilder::new(k).case_insensitive(true).size_limit(REGEX_SIZE_LIMIT).build()
}

/// A birthday rule's time of day, `HH:MM` (24-hour): (hour, minute).
pub fn parse_at(at: &str) -> Result<(u32, u32), String> {
    let bad = || format!("\"at\" {at} is not a time of day (HH:MM, e.g. 09:00)");
    let (h, m) = at.trim().split_once(':').ok_or_else(bad)?;
    let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if h > 23 || m > 59 || at.trim().len() != 5 {
        return Err(bad());
    }
    Ok((h, m))
}

/// A text must compile as a template and name only the trigger's variables.
fn check_text(text: &str, fields: Option<&[&str]>) -> Result<(), String> {
    let env = eval::env();
    let t = env.template_from_str(text).map_err(|e| format!("the text does not compile: {e}"))?;
    if let Some(fields) = fields {
        let unknown: Vec<String> = t.undeclared_variables(false).into_iter().filter(|v| !fields.contains(&v.as_str())).collect();
        if !unknown.is_empty() {
            return Err(format!("the text uses {} — this trigger has: {}", unknown.join(", "), fields.join(", ")));
        }
    }
    Ok(())
}
