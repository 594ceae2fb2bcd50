//! A rule's context: the variables of a drop trigger's event, a sample of each trigger's for
//! dry runs, and the built-in example rule.

use serde_json::{Map, Value};
use std::collections::BTreeMap;

use super::{ActionSpec, Conditions, Recipient, RuleSpec, Trigger};
use crate::domain::DropStatus;

/// The context of a drop trigger: what conditions test and templates are rendered with.
pub fn drop_context(
    drop_number: &str,
    project: &str,
    status: DropStatus,
    from: Option<DropStatus>,
    round: i64,
    contractor: Option<(&str, &str)>,
) -> Value {
    let mut m = Map::new();
    m.insert("drop_number".into(), drop_number.into());
    m.insert("project".into(), project.into());
    m.insert("status".into(), status.as_str().into());
    m.insert("from".into(), from.map(|s| Value::from(s.as_str())).unwrap_or(Value::Null));
    m.insert("round".into(), round.into());
    let (name, phone) = contractor.unwrap_or(("", ""));
    m.insert("contractor_name".into(), name.into());
    m.insert("contractor_phone".into(), if phone.is_empty() { Value::Null } else { phone.into() });
    Value::Object(m)
}

/// An example of a trigger's context, for a dry run's sample event.
pub fn sample_context(trigger: &Trigger) -> Value {
    let contractor = Some(("Thabo", "+27640412391"));
    match trigger {
        Trigger::DropStatusChanged { from, to } => drop_context(
            "DR12345678",
            "Velo Test",
            to.unwrap_or(DropStatus::Incomplete),
            Some(from.unwrap_or(DropStatus::Unreviewed)),
            1,
            contractor,
        ),
        Trigger::DropStatusHeld { status, .. } => drop_context("DR12345678", "Velo Test", *status, None, 1, contractor),
        Trigger::MessageInbound { keywords, .. } => {
            serde_json::json!({"phone": "+27640412391", "name": "Thabo", "text": keywords.first().cloned().unwrap_or_default(), "drop_number": null})
        }
        Trigger::ApiEvent { event } => serde_json::json!({"event": event, "phone": "+27640412391"}),
        Trigger::ContactTagAdded { tag } | Trigger::ContactTagRemoved { tag } => {
            serde_json::json!({"phone": "+27640412391", "name": "Thabo", "tag": tag.clone().unwrap_or_else(|| "late".into())})
        }
        Trigger::ContactCreated {} | Trigger::ContactUpdated { .. } | Trigger::ContactOptedOut {} | Trigger::ContactBirthday { .. } => {
            let changed = match trigger {
                Trigger::ContactUpdated { field } => vec![field.clone().unwrap_or_else(|| "name".into())],
                _ => vec![],
            };
            serde_json::json!({"phone": "+27640412391", "name": "Thabo", "time_zone": "Africa/Johannesburg", "consent": "opted_in",
                "birthday": "03-14", "tags": ["crew-a"], "changed": changed})
        }
        Trigger::ScheduleCron { time_zone, .. } => {
            serde_json::json!({"scheduled_for": "2026-12-07T08:00:00+02:00", "time_zone": time_zone})
        }
    }
}

/// The built-in example rule (stored disabled on first start).
pub const BUILTIN_REMINDER: &str = "incomplete_reminder";

pub fn builtin_reminder() -> RuleSpec {
    RuleSpec {
        name: "Remind the contractor when a drop has been Incomplete for 24 hours".into(),
        enabled: false,
        trigger: Trigger::DropStatusHeld { status: DropStatus::Incomplete, minutes: 1440 },
        conditions: Conditions::default(),
        actions: vec![ActionSpec::SendTemplate { template: "drop_reminder".into(), to: Recipient::Contact, variables: BTreeMap::new() }],
        stop_processing: false,
    }
}
