use super::*;
use serde_json::json;

fn parse(v: Value) -> Result<RuleSpec, String> {
    RuleSpec::parse(&v).map_err(|e| e.message)
}

fn held_rule() -> Value {
    json!({"name": "Remind", "enabled": true,
        "trigger": {"type": "drop.status_held", "status": "incomplete", "minutes": 1440},
        "conditions": {"all": [{"field": "project", "op": "eq", "value": "Velo Test"}]},
        "actions": [{"type": "send_template", "template": "drop_reminder", "to": "contact"}]})
}

#[test]
fn the_issue_example_reads_and_writes_back_the_same() {
    let spec = parse(held_rule()).unwrap();
    assert_eq!(spec.trigger, Trigger::DropStatusHeld { status: DropStatus::Incomplete, minutes: 1440 });
    assert_eq!(serde_json::to_value(&spec).unwrap(), held_rule(), "the API returns the rule as it was given");
    let inbound = parse(json!({"name": "Price", "trigger": {"type": "message.inbound", "match": "contains", "keywords": ["price"]},
        "actions": [{"type": "send_text", "text": "Prices: see the site, {{ name }}"}]}))
    .unwrap();
    assert!(inbound.enabled, "enabled unless said");
    assert_eq!(builtin_reminder().trigger.kind(), "drop.status_held");
    assert!(!builtin_reminder().enabled, "the built-in example ships turned off");
    builtin_reminder().check().unwrap();
}

#[test]
fn bad_rules_are_refused_with_what_is_wrong() {
    let cases = [
        (json!({"name": "x", "trigger": {"type": "drop.status_held", "status": "incomplete", "minutes": 0}, "actions": []}), "minutes"),
        (json!({"name": "x", "trigger": {"type": "drop.status_held", "status": "lost", "minutes": 5}, "actions": []}), "unknown variant"),
        (json!({"name": "x", "trigger": {"type": "schedule.nope"}, "actions": []}), "unknown variant"),
        (
            json!({"name": "", "trigger": {"type": "api.event", "event": "a.b"}, "actions": [{"type": "notify_users", "text": "hi"}]}),
            "name",
        ),
        (json!({"name": "x", "trigger": {"type": "api.event", "event": "a.b"}, "actions": []}), "1–10 actions"),
        (
            json!({"name": "x", "trigger": {"type": "api.event", "event": "a b"}, "actions": [{"type": "notify_users", "text": "hi"}]}),
            "\"event\"",
        ),
        (
            json!({"name": "x", "trigger": {"type": "drop.status_changed", "to": "approved"}, "conditions": {"all": [{"field": "colour", "op": "eq", "value": "red"}]},
                "actions": [{"type": "notify_users", "text": "hi"}]}),
            "colour",
        ),
        (
            json!({"name": "x", "trigger": {"type": "drop.status_changed", "to": "approved"}, "actions": [{"type": "notify_users", "text": "{{ colour }}"}]}),
            "uses colour",
        ),
        (
            json!({"name": "x", "trigger": {"type": "drop.status_changed"}, "actions": [{"type": "notify_users", "text": "{% if %}"}]}),
            "does not compile",
        ),
        (
            json!({"name": "x", "trigger": {"type": "message.inbound", "match": "regex", "keywords": ["(unclosed"]}, "actions": [{"type": "notify_users", "text": "hi"}]}),
            "regex",
        ),
        (
            json!({"name": "x", "trigger": {"type": "api.event", "event": "a"}, "actions": [{"type": "send_template", "template": "t", "to": "tag:a,b"}]}),
            "tag",
        ),
        (
            json!({"name": "x", "trigger": {"type": "api.event", "event": "a"}, "actions": [{"type": "send_template", "template": "t", "to": "12"}]}),
            "not a valid international phone number",
        ),
        (
            json!({"name": "x", "trigger": {"type": "api.event", "event": "a"}, "actions": [{"type": "notify_users", "text": "hi"}], "colour": 1}),
            "unknown field",
        ),
        (
            json!({"name": "x", "trigger": {"type": "drop.status_changed", "from": "approved", "to": "approved"}, "actions": [{"type": "notify_users", "text": "hi"}]}),
            "same status",
        ),
    ];
    for (rule, want) in cases {
        let err = parse(rule.clone()).expect_err(&rule.to_string());
        assert!(err.contains(want), "{rule}: {err} (wanted {want})");
    }
}

#[test]
fn triggers_match_their_events_only() {
    let changed = Trigger::DropStatusChanged { from: None, to: Some(DropStatus::Incomplete) };
    assert!(trigger_matches(&changed, &Event::DropStatusChanged { from: DropStatus::Unreviewed, to: DropStatus::Incomplete }));
    assert!(!trigger_matches(&changed, &Event::DropStatusChanged { from: DropStatus::Unreviewed, to: DropStatus::Approved }));
    assert!(!trigger_matches(&changed, &Event::ApiEvent { event: "x" }));
    let words = |mode, k: &[&str], text| {
        trigger_matches(
            &Trigger::MessageInbound { mode, keywords: k.iter().map(|s| s.to_string()).collect() },
            &Event::MessageInbound { text },
        )
    };
    assert!(words(MatchMode::Contains, &["price"], "What is the PRICE?"));
    assert!(!words(MatchMode::Exact, &["price"], "price?"));
    assert!(words(MatchMode::Exact, &["price"], "  Price "));
    assert!(words(MatchMode::StartsWith, &["help"], "help me"));
    assert!(!words(MatchMode::StartsWith, &["help"], "I need help"));
    assert!(words(MatchMode::Regex, &[r"^\d{4}$"], "2026"));
    let held = Trigger::DropStatusHeld { status: DropStatus::Incomplete, minutes: 60 };
    assert!(trigger_matches(&held, &Event::DropStatusHeld { status: DropStatus::Incomplete, minutes: 61 }));
    assert!(!trigger_matches(&held, &Event::DropStatusHeld { status: DropStatus::Incomplete, minutes: 59 }));
}

#[test]
fn conditions_hold_as_written() {
    let ctx = json!({"project": "Velo Test", "round": 2, "status": "incomplete", "contractor_name": "", "tags": ["late"]});
    let c = |v: Value| -> Conditions { serde_json::from_value(v).unwrap() };
    assert_eq!(condition_result(&c(json!({})), &ctx), Ok(true), "no conditions: the rule runs");
    assert_eq!(condition_result(&c(json!({"all": [{"field": "project", "op": "eq", "value": "velo test"}]})), &ctx), Ok(true));
    assert_eq!(condition_result(&c(json!({"all": [{"field": "project", "op": "ne", "value": "Velo Test"}]})), &ctx), Ok(false));
    assert_eq!(condition_result(&c(json!({"all": [{"field": "round", "op": "gt", "value": 1}]})), &ctx), Ok(true));
    assert_eq!(condition_result(&c(json!({"all": [{"field": "round", "op": "eq", "value": "2"}]})), &ctx), Ok(true));
    assert_eq!(condition_result(&c(json!({"all": [{"field": "round", "op": "lt", "value": 2}]})), &ctx), Ok(false));
    assert_eq!(
        condition_result(&c(json!({"all": [{"field": "status", "op": "in", "value": ["approved", "incomplete"]}]})), &ctx),
        Ok(true)
    );
    assert_eq!(condition_result(&c(json!({"all": [{"field": "status", "op": "not_in", "value": ["incomplete"]}]})), &ctx), Ok(false));
    assert_eq!(condition_result(&c(json!({"all": [{"field": "contractor_name", "op": "exists"}]})), &ctx), Ok(false), "blank is absent");
    assert_eq!(condition_result(&c(json!({"all": [{"field": "nothing", "op": "exists", "value": false}]})), &ctx), Ok(true));
    assert_eq!(condition_result(&c(json!({"all": [{"field": "project", "op": "contains", "value": "velo"}]})), &ctx), Ok(true));
    assert_eq!(condition_result(&c(json!({"all": [{"field": "tags", "op": "contains", "value": "late"}]})), &ctx), Ok(true));
    assert_eq!(condition_result(&c(json!({"all": [{"field": "project", "op": "starts_with", "value": "Test"}]})), &ctx), Ok(false));
    let any = c(json!({"any": [{"field": "project", "op": "eq", "value": "Other"}, {"field": "round", "op": "eq", "value": 2}]}));
    assert_eq!(condition_result(&any, &ctx), Ok(true));
    let none = c(json!({"all": [{"field": "round", "op": "eq", "value": 2}], "any": [{"field": "project", "op": "eq", "value": "Other"}]}));
    assert_eq!(condition_result(&none, &ctx), Ok(false), "all hold but none of any");
    assert!(condition_result(&c(json!({"all": [{"field": "status", "op": "in", "value": "incomplete"}]})), &ctx).is_err());
}

#[test]
fn a_condition_expression_must_also_hold_and_is_checked_on_save() {
    let ctx = json!({"project": "Velo Test", "round": 2, "status": "incomplete", "contractor_name": "Thabo"});
    let c = |v: Value| -> Conditions { serde_json::from_value(v).unwrap() };
    let expr = |e: &str| c(json!({"expression": e}));
    assert_eq!(condition_result(&expr("round > 1 and project in ['Velo Test', 'North']"), &ctx), Ok(true));
    assert_eq!(condition_result(&expr("round > 2"), &ctx), Ok(false));
    assert_eq!(condition_result(&expr("contractor_name | lower == 'thabo'"), &ctx), Ok(true));
    assert_eq!(condition_result(&expr("plan == 'Gold'"), &ctx), Ok(false), "a variable the event lacks is undefined: false");
    let both = c(json!({"all": [{"field": "status", "op": "eq", "value": "incomplete"}], "expression": "round == 1"}));
    assert_eq!(condition_result(&both, &ctx), Ok(false), "the structured conditions and the expression");
    let rule = |e: &str| {
        parse(json!({"name": "x", "trigger": {"type": "drop.status_changed"}, "conditions": {"expression": e},
            "actions": [{"type": "notify_users", "text": "hi"}]}))
    };
    assert!(rule("round > 1").is_ok());
    assert!(rule("round >").unwrap_err().contains("does not compile"));
    assert!(rule("colour == 'red'").unwrap_err().contains("uses colour"), "names only the trigger's variables");
    assert!(rule("").is_err());
}

#[test]
fn action_texts_render_over_the_context_and_name_what_is_missing() {
    let ctx = drop_context("DR1", "Velo Test", DropStatus::Incomplete, Some(DropStatus::Unreviewed), 1, Some(("Thabo", "+27640412391")));
    assert_eq!(render_text("{{ drop_number }} is {{ status }} (was {{ from }})", &ctx).unwrap(), "DR1 is incomplete (was unreviewed)");
    assert!(render_text("{{ nope }}", &ctx).is_err(), "an unknown variable is an error, not blank text");
    assert_eq!(minutes_text(1440), "1 day");
    assert_eq!(minutes_text(1), "1 minute");
    assert_eq!(minutes_text(90), "1 h 30 min");
    assert_eq!(minutes_text(120), "2 hours");
}
