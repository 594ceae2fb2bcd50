//! Automation rules on both backends: each trigger fires with its actions, once; a held
//! status fires once per episode and not after the drop moved on; an API event with the same
//! idempotency key is one event; a dry run writes nothing.

use dropcheck_core::automation::RuleSpec;
use dropcheck_core::domain::{DropNumber, DropStatus, Phone, StepNo, Verdict, DEFAULT_DROP_PATTERN};
use dropcheck_core::ids::MessageId;
use dropcheck_core::now_ms;
use dropcheck_core::store::{ActorRef, RunRow, StepVerdict, Store};
use dropcheck_core::testing::on_each_backend;
use serde_json::json;

const DROP: &str = "DR12345678";
const PHONE: &str = "+27640412391";

fn dn() -> DropNumber {
    DropNumber::parse(DROP).unwrap()
}

/// A drop with a contractor, through to Unreviewed with step 3 rejected.
async fn drop_ready_for_feedback(store: &Store) {
    let project = store.create_project("Velo Test", DEFAULT_DROP_PATTERN).await.unwrap();
    let api = ActorRef::system("api");
    store.upsert_contact(&Phone::parse(PHONE).unwrap(), "Thabo").await.unwrap();
    store.create_drop(&project, &dn(), Some(&Phone::parse(PHONE).unwrap()), DropStatus::Unreviewed, &api).await.unwrap();
    reject_step_3(store).await;
}

async fn reject_step_3(store: &Store) {
    let v = StepVerdict { step: StepNo::new(3).unwrap(), verdict: Verdict::Missing, reason: Some("no_photo".into()), note: String::new() };
    store.set_verdicts(&dn(), &[v], &ActorRef::system("qa")).await.unwrap();
}

async fn rule(store: &Store, v: serde_json::Value) -> i64 {
    store.create_rule(&RuleSpec::parse(&v).unwrap()).await.unwrap().id
}

async fn runs(store: &Store, rule: i64) -> Vec<RunRow> {
    store.automation_runs(rule, None, 100).await.unwrap()
}

async fn body(store: &Store, id: Option<i64>) -> String {
    store.message(MessageId(id.expect("the action queued a message"))).await.unwrap().body
}

#[tokio::test]
async fn a_held_status_reminds_once_per_episode_and_not_after_the_drop_moved_on() {
    on_each_backend(|store| async move {
        drop_ready_for_feedback(&store).await;
        let builtin = store.automation_rules().await.unwrap().into_iter().find(|r| r.builtin.is_some()).expect("the built-in example");
        assert!(!builtin.spec.enabled, "it ships turned off");
        assert_eq!(store.delete_rule(builtin.id).await.unwrap_err().code(), "builtin_rule");
        let mut spec = builtin.spec.clone();
        spec.enabled = true;
        spec.trigger = dropcheck_core::automation::Trigger::DropStatusHeld { status: DropStatus::Incomplete, minutes: 60 };
        store.update_rule(builtin.id, &spec).await.unwrap();

        store.mark_incomplete(&dn(), &ActorRef::system("qa")).await.unwrap();
        let now = now_ms();
        assert_eq!(store.sweep_held(now + 59 * 60_000).await.unwrap(), 0, "not held long enough yet");
        assert_eq!(store.sweep_held(now + 61 * 60_000).await.unwrap(), 1);
        assert_eq!(store.sweep_held(now + 62 * 60_000).await.unwrap(), 0, "once per episode");
        let r = runs(&store, builtin.id).await;
        assert_eq!(r.len(), 1);
        assert_eq!((r[0].status.as_str(), r[0].subject.as_str(), r[0].trigger.as_str()), ("succeeded", DROP, "drop.status_held"));
        assert_eq!(r[0].actions.len(), 1);
        assert_eq!((r[0].actions[0].recipient.as_str(), r[0].actions[0].status.as_str()), (PHONE, "done"));
        let text = body(&store, r[0].actions[0].message_id).await;
        assert!(text.starts_with("Reminder, Thabo: drop DR12345678 (Velo Test) is still waiting"), "{text}");

        // The contractor fixes it: no reminder while Resubmitted; marked incomplete again, a new episode.
        store.resubmit(&dn(), &ActorRef::system("contractor")).await.unwrap();
        assert_eq!(store.sweep_held(now_ms() + 120 * 60_000).await.unwrap(), 0, "the drop moved on");
        reject_step_3(&store).await;
        store.mark_incomplete(&dn(), &ActorRef::system("qa")).await.unwrap();
        assert_eq!(store.sweep_held(now_ms() + 61 * 60_000).await.unwrap(), 1, "a new episode, one more reminder");
        assert_eq!(store.sweep_held(now_ms() + 600 * 60_000).await.unwrap(), 0);
        assert_eq!(runs(&store, builtin.id).await.len(), 2);

        // Turned off: no more runs.
        store.set_rule_enabled(builtin.id, false).await.unwrap();
        store.resubmit(&dn(), &ActorRef::system("contractor")).await.unwrap();
        reject_step_3(&store).await;
        store.mark_incomplete(&dn(), &ActorRef::system("qa")).await.unwrap();
        assert_eq!(store.sweep_held(now_ms() + 61 * 60_000).await.unwrap(), 0);
    })
    .await;
}

#[tokio::test]
async fn a_status_change_runs_its_rules_in_the_same_transaction_with_conditions() {
    on_each_backend(|store| async move {
        drop_ready_for_feedback(&store).await;
        let to_incomplete = rule(
            &store,
            json!({"name": "Tell QA", "trigger": {"type": "drop.status_changed", "to": "incomplete"},
                "actions": [{"type": "send_template", "template": "drop_reminder", "to": "+27831234567", "variables": {"contractor_name": "QA lead"}},
                            {"type": "send_text", "text": "{{ drop_number }} went from {{ from }} to {{ status }}"}]}),
        )
        .await;
        let other_project = rule(
            &store,
            json!({"name": "Other project only", "trigger": {"type": "drop.status_changed"},
                "conditions": {"all": [{"field": "project", "op": "eq", "value": "Other"}]},
                "actions": [{"type": "send_text", "text": "never"}]}),
        )
        .await;
        let approved_only =
            rule(&store, json!({"name": "Approved", "trigger": {"type": "drop.status_changed", "to": "approved"}, "actions": [{"type": "notify_users", "text": "x"}]}))
                .await;

        store.mark_incomplete(&dn(), &ActorRef::system("qa")).await.unwrap();
        let r = runs(&store, to_incomplete).await;
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].status, "succeeded", "a skipped action is not a failure: {:?}", r[0].actions);
        let sent = &r[0].actions[0];
        assert_eq!((sent.status.as_str(), sent.recipient.as_str()), ("done", "+27831234567"));
        assert!(body(&store, sent.message_id).await.starts_with("Reminder, QA lead: drop DR12345678"), "variables override the context");
        let text = &r[0].actions[1];
        assert_eq!(text.status, "skipped", "the contractor has not written in 24 hours: {text:?}");
        assert!(text.detail.contains("24-hour window"), "{}", text.detail);

        let skipped = runs(&store, other_project).await;
        assert_eq!((skipped.len(), skipped[0].status.as_str(), skipped[0].detail.as_str()), (1, "skipped", "conditions not met"));
        assert!(skipped[0].actions.is_empty());
        assert!(runs(&store, approved_only).await.is_empty(), "a trigger for another status does not run");

        // Inside the window, the free text goes.
        store.note_inbound(&Phone::parse(PHONE).unwrap(), now_ms()).await.unwrap();
        store.resubmit(&dn(), &ActorRef::system("contractor")).await.unwrap();
        reject_step_3(&store).await;
        store.mark_incomplete(&dn(), &ActorRef::system("qa")).await.unwrap();
        let r = runs(&store, to_incomplete).await;
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].status, "succeeded");
        assert_eq!(body(&store, r[0].actions[1].message_id).await, "DR12345678 went from resubmitted to incomplete");
    })
    .await;
}

#[tokio::test]
async fn an_api_event_is_recorded_once_per_key_and_runs_its_rules() {
    on_each_backend(|store| async move {
        let id = rule(
            &store,
            json!({"name": "Paid", "trigger": {"type": "api.event", "event": "order.paid"},
                "actions": [{"type": "send_text", "text": "Thanks {{ name }}, {{ amount }} received", "fallback_template": "payment_confirmation"}]}),
        )
        .await;
        let data = json!({"phone": PHONE, "name": "Thabo", "amount": "R 250", "customer_name": "Thabo", "reference": "INV-1"});
        let (first, created) = store.post_event("order.paid", &data, Some("k-1")).await.unwrap();
        assert!(created);
        let (again, created) = store.post_event("order.paid", &data, Some("k-1")).await.unwrap();
        assert_eq!((again, created), (first, false), "the same key is the same event");
        let r = runs(&store, id).await;
        assert_eq!(r.len(), 1, "one run for one event");
        assert_eq!(r[0].actions[0].status, "done");
        assert_eq!(body(&store, r[0].actions[0].message_id).await, "Payment received! R 250 for INV-1. Thank you, Thabo.", "outside the window: the fallback template");
        store.post_event("order.refunded", &data, Some("k-2")).await.unwrap();
        assert_eq!(runs(&store, id).await.len(), 1, "another type runs nothing");
        assert_eq!(store.post_event("no spaces", &data, None).await.unwrap_err().code(), "invalid_event_type");
        assert_eq!(store.post_event("a.b", &json!([1]), None).await.unwrap_err().code(), "invalid_event");

        // A dry run says what would go out and writes nothing.
        let dry = store.dry_run(id, &data).await.unwrap();
        assert_eq!((dry.trigger_matches, dry.conditions.clone(), dry.status), (true, Ok(true), "succeeded"));
        assert_eq!(dry.actions[0].status, "would_send");
        assert!(dry.actions[0].detail.contains("R 250"), "{:?}", dry.actions);
        assert_eq!(runs(&store, id).await.len(), 1, "the dry run logged nothing");
        let unknown = rule(&store, json!({"name": "Bad", "trigger": {"type": "api.event", "event": "x"}, "actions": [{"type": "send_template", "template": "drop_reminder"}]})).await;
        let dry = store.dry_run(unknown, &json!({"phone": PHONE})).await.unwrap();
        assert_eq!(dry.status, "failed");
        assert!(dry.actions[0].detail.contains("drop_number"), "a template variable the event lacks is named: {:?}", dry.actions);
    })
    .await;
}

#[tokio::test]
async fn rules_that_name_a_missing_template_are_refused() {
    on_each_backend(|store| async move {
        let spec = RuleSpec::parse(&json!({"name": "x", "trigger": {"type": "api.event", "event": "a"}, "actions": [{"type": "send_template", "template": "nope"}]}))
            .unwrap();
        let err = store.create_rule(&spec).await.unwrap_err();
        assert_eq!(err.code(), "invalid_rule");
        assert!(err.to_string().contains("no template nope"), "{err}");
        assert_eq!(store.automation_rule(999).await.unwrap_err().code(), "rule_not_found");
    })
    .await;
}

#[tokio::test]
async fn a_keyword_rule_answers_a_text_no_command_took_instead_of_the_hint() {
    use dropcheck_core::domain::Direction;
    use dropcheck_core::outbox::MessageFilter;
    use dropcheck_core::providers::{InboundMessage, MessageKind};
    on_each_backend(|store| async move {
        store.create_project("Velo Test", DEFAULT_DROP_PATTERN).await.unwrap();
        let id = rule(
            &store,
            json!({"name": "Prices", "trigger": {"type": "message.inbound", "match": "contains", "keywords": ["price", "cost", "12345678"]},
                "actions": [{"type": "send_text", "text": "Hi {{ name }}, prices are on the price list."}]}),
        )
        .await;
        let say = |body: &str, n: u32| InboundMessage {
            provider_id: format!("SM{n}"),
            from: PHONE.into(),
            profile_name: "Sipho".into(),
            body: body.into(),
            kind: MessageKind::Text,
            media: vec![],
        };
        let now = now_ms();
        store.handle_message(&say("What does it COST?", 1), &[], now).await.unwrap();
        store.handle_message(&say("hello", 2), &[], now + 1).await.unwrap();
        // A drop number is the bot's, never a keyword's (it opens the drop as always).
        store.handle_message(&say("DR12345678", 3), &[], now + 2).await.unwrap();
        let f = MessageFilter { direction: Some(Direction::Out), ..Default::default() };
        let out: Vec<String> = store.list_messages(&f, None, 50).await.unwrap().0.into_iter().rev().map(|m| m.body).collect();
        assert_eq!(out[0], "Hi Sipho, prices are on the price list.", "{out:?}");
        assert!(out[1].starts_with("Sorry, I did not understand"), "no keyword: the hint: {out:?}");
        assert!(out[2].starts_with("Drop DR12345678 (Velo Test)"), "{out:?}");
        assert_eq!(out.len(), 3, "{out:?}");
        let r = runs(&store, id).await;
        assert_eq!(r.len(), 1, "one run, for the text with a keyword");
        assert_eq!((r[0].trigger.as_str(), r[0].subject.as_str(), r[0].status.as_str()), ("message.inbound", PHONE, "succeeded"));
    })
    .await;
}

/// Two servers (two stores on one database) sweep a rule that runs every minute, each on
/// its own clock a little apart, both at once; one of them stops (killed) halfway. Every
/// minute runs exactly once and sends exactly one message.
#[tokio::test]
async fn a_schedule_fires_once_per_instant_across_two_servers_one_of_them_killed() {
    use dropcheck_core::testing::TestDb;
    let mut dbs = vec![TestDb::sqlite().await];
    if let Some(pg) = TestDb::postgres().await {
        dbs.push(pg);
    }
    for db in dbs {
        let a = db.store.clone();
        let b = Store::connect(&db.url).await.expect("a second server's connection");
        let id = rule(
            &a,
            json!({"name": "Every minute", "trigger": {"type": "schedule.cron", "cron": "* * * * *", "time_zone": "Africa/Johannesburg"},
                "actions": [{"type": "send_text", "to": "+27831234567", "text": "tick {{ scheduled_for }}"}, {"type": "notify_users", "text": "tick"}]}),
        )
        .await;
        // The contact wrote within the day, so free texts go.
        a.note_inbound(&Phone::parse("+27831234567").unwrap(), now_ms()).await.unwrap();
        let start = now_ms();
        let mut fired = 0;
        // Ten minutes, swept every 15 s by A and every 20 s by B (B stops after five minutes).
        for step in 0..40 {
            let t_a = start + step * 15_000;
            let t_b = start + step * 20_000;
            let (ra, rb) = if t_b <= start + 5 * 60_000 {
                tokio::join!(a.sweep_schedules(t_a), b.sweep_schedules(t_b))
            } else {
                (a.sweep_schedules(t_a).await, Ok(0))
            };
            fired += ra.unwrap() + rb.unwrap();
        }
        let runs = runs(&a, id).await;
        let minutes = ((start + 39 * 15_000) / 60_000) - (start / 60_000);
        assert_eq!(fired as i64, minutes, "{}: one run per minute ({} runs)", db.name, runs.len());
        assert_eq!(runs.len() as i64, minutes);
        let mut instants: Vec<String> = runs.iter().map(|r| r.context["scheduled_for"].as_str().unwrap().to_string()).collect();
        instants.sort();
        instants.dedup();
        assert_eq!(instants.len() as i64, minutes, "each minute once: {instants:?}");
        assert!(instants[0].ends_with("+02:00"), "in the rule's time zone: {}", instants[0]);
        let texts: Vec<_> = runs.iter().map(|r| r.actions[0].message_id.expect("a message per run")).collect();
        let mut distinct = texts.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), texts.len(), "no message twice");
        assert_eq!(runs[0].actions[1].status, "skipped", "no user has a linked number: {:?}", runs[0].actions[1]);
        // A sweep later, with nothing new due: nothing runs again.
        assert_eq!(a.sweep_schedules(start + 39 * 15_000).await.unwrap() + b.sweep_schedules(start + 39 * 15_000).await.unwrap(), 0);
        b.close().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn a_schedule_made_later_does_not_fire_for_the_past_and_one_that_catches_up_does() {
    on_each_backend(|store| async move {
        let skip = rule(&store, json!({"name": "Hourly", "trigger": {"type": "schedule.cron", "cron": "0 * * * *"}, "actions": [{"type": "notify_users", "text": "x"}]})).await;
        let catch = rule(&store, json!({"name": "Hourly, caught up", "trigger": {"type": "schedule.cron", "cron": "0 * * * *", "catch_up": true}, "actions": [{"type": "notify_users", "text": "x"}]})).await;
        // The server was down for three hours after the rules were made.
        // (Six minutes past the third full hour: the last instant is 6 minutes late.)
        let later = (now_ms() / 3_600_000 + 3) * 3_600_000 + 6 * 60_000;
        store.sweep_schedules(later).await.unwrap();
        assert_eq!(runs(&store, skip).await.len(), 0, "missed instants are skipped (the last is over 5 minutes late)");
        assert_eq!(runs(&store, catch).await.len(), 3, "caught up: each missed hour once");
        store.sweep_schedules(later + 1000).await.unwrap();
        assert_eq!(runs(&store, catch).await.len(), 3);
        let bad = RuleSpec::parse(&json!({"name": "x", "trigger": {"type": "schedule.cron", "cron": "0 8 * *"}, "actions": [{"type": "notify_users", "text": "x"}]}));
        assert!(bad.unwrap_err().message.contains("five"));
    })
    .await;
}

/// Tag actions and tag triggers, and the loop guard: rule A tags a contact "late" when their
/// drop goes incomplete; rule B removes "late" when it is added; rule C adds it back when it is
/// removed — a loop that stops at the depth guard, each rule never running for its own event.
#[tokio::test]
async fn tag_rules_chain_and_a_loop_stops_at_the_depth_guard() {
    on_each_backend(|store| async move {
        drop_ready_for_feedback(&store).await;
        let a = rule(&store, json!({"name": "A", "trigger": {"type": "drop.status_changed", "to": "incomplete"}, "actions": [{"type": "add_tag", "tag": "Late"}]})).await;
        let b = rule(&store, json!({"name": "B", "trigger": {"type": "contact.tag_added", "tag": "late"}, "actions": [{"type": "remove_tag", "tag": "late"}]})).await;
        // A tag is a plain name, not a template.
        assert!(RuleSpec::parse(&json!({"name": "C", "trigger": {"type": "contact.tag_removed"}, "actions": [{"type": "add_tag", "tag": "a,b"}]})).is_err());
        let c = rule(&store, json!({"name": "C", "trigger": {"type": "contact.tag_removed"}, "actions": [{"type": "add_tag", "tag": "late"}, {"type": "send_text", "to": "+27831234567", "text": "{{ name }} lost {{ tag }}"}]})).await;
        store.mark_incomplete(&dn(), &ActorRef::system("qa")).await.unwrap();
        let (ra, rb, rc) = (runs(&store, a).await, runs(&store, b).await, runs(&store, c).await);
        assert_eq!(ra.len(), 1);
        assert_eq!((ra[0].actions[0].status.as_str(), ra[0].actions[0].detail.as_str()), ("done", "tagged Late"));
        // A (depth 0) → tag_added (1) → B → tag_removed (2) → C → tag_added (3): no rule runs at 3.
        assert_eq!((rb.len(), rc.len()), (1, 1), "the chain ends at the depth guard");
        assert_eq!(rb[0].actions[0].detail, "tag late removed");
        assert_eq!(rc[0].actions[0].detail, "tagged late");
        assert_eq!(store.contact_tags(&Phone::parse(PHONE).unwrap()).await.unwrap(), vec!["Late".to_string()], "the name as first written");
        // The API's way: setting the tags records events and runs rules too.
        store.set_contact_tags(&Phone::parse(PHONE).unwrap(), &[], "API key ci").await.unwrap();
        // Removed at depth 0 → C adds (1) → B removes (2) → C adds (3): C ran twice more.
        assert_eq!(runs(&store, c).await.len(), 3, "removing it ran the chain again, to the guard");
        assert_eq!(store.contact_tags(&Phone::parse(PHONE).unwrap()).await.unwrap(), vec!["Late".to_string()]);
        assert!(store.set_contact_tags(&Phone::parse(PHONE).unwrap(), &["a,b".into()], "x").await.is_err());
    })
    .await;
}

/// A delay: the run waits, a sweep resumes it once (two sweeping side by side start it once),
/// its messages keep their keys, and a rule turned off while a run waits cancels the rest.
#[tokio::test]
async fn a_delayed_action_runs_once_after_its_delay_and_not_after_the_rule_is_turned_off() {
    on_each_backend(|store| async move {
        store.note_inbound(&Phone::parse(PHONE).unwrap(), now_ms()).await.unwrap();
        let spec = json!({"name": "Follow up", "trigger": {"type": "api.event", "event": "order.paid"},
            "actions": [{"type": "send_text", "text": "Paid, thanks"}, {"type": "delay", "minutes": 60}, {"type": "send_text", "text": "How was it, {{ name }}?"}]});
        let id = rule(&store, spec.clone()).await;
        let ends_waiting = json!({"name": "x", "trigger": {"type": "api.event", "event": "a"}, "actions": [{"type": "notify_users", "text": "hi"}, {"type": "delay", "minutes": 5}]});
        assert!(RuleSpec::parse(&ends_waiting).unwrap_err().message.contains("ends with one"));
        assert!(RuleSpec::parse(&json!({"name": "x", "trigger": {"type": "api.event", "event": "a"}, "actions": [{"type": "delay", "minutes": 0}, {"type": "notify_users", "text": "hi"}]})).is_err());

        store.post_event("order.paid", &json!({"phone": PHONE, "name": "Thabo"}), Some("p-1")).await.unwrap();
        let r = runs(&store, id).await;
        assert_eq!(r[0].status, "waiting");
        let kinds: Vec<(&str, &str)> = r[0].actions.iter().map(|a| (a.kind.as_str(), a.status.as_str())).collect();
        assert_eq!(kinds, vec![("send_text", "done"), ("delay", "waiting")]);
        let now = now_ms();
        assert_eq!(store.sweep_delayed(now + 59 * 60_000).await.unwrap(), 0, "not yet");
        let (a, b) = tokio::join!(store.sweep_delayed(now + 61 * 60_000), store.sweep_delayed(now + 61 * 60_000));
        assert_eq!(a.unwrap() + b.unwrap(), 1, "two sweeps side by side resume it once");
        assert_eq!(store.sweep_delayed(now + 120 * 60_000).await.unwrap(), 0);
        let r = runs(&store, id).await;
        assert_eq!(r[0].status, "succeeded");
        let kinds: Vec<(&str, &str)> = r[0].actions.iter().map(|a| (a.kind.as_str(), a.status.as_str())).collect();
        assert_eq!(kinds, vec![("send_text", "done"), ("delay", "done"), ("send_text", "done")]);
        assert_eq!(body(&store, r[0].actions[2].message_id).await, "How was it, Thabo?", "the event's variables, kept while it waited");

        // Turned off while a run waits: the rest is cancelled.
        store.post_event("order.paid", &json!({"phone": PHONE, "name": "Thabo"}), Some("p-2")).await.unwrap();
        store.set_rule_enabled(id, false).await.unwrap();
        assert_eq!(store.sweep_delayed(now + 120 * 60_000).await.unwrap(), 1);
        let r = runs(&store, id).await;
        assert_eq!((r[0].status.as_str(), r[0].actions.len()), ("cancelled", 2), "{:?}", r[0]);
    })
    .await;
}
