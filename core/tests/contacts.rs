//! Contacts on both backends: profiles (attributes, birthday, time zone, consent, tags) with
//! their events recorded and rules run in the change's transaction, the list's filters, the
//! contact triggers and actions, birthdays once per contact per year, and CSV imports that
//! never create a contact twice.

use dropcheck_core::automation::RuleSpec;
use dropcheck_core::contacts::{AttrType, AttributeDef, Birthday, ConsentStatus, ContactUpdate};
use dropcheck_core::domain::Phone;
use dropcheck_core::ids::MessageId;
#[allow(unused_imports)]
use dropcheck_core::store::Tx;
use dropcheck_core::store::{ContactFilter, ImportMapping, ImportMode, RunRow, Store};
use dropcheck_core::testing::on_each_backend;
use serde_json::json;

const PHONE: &str = "+27640412391";

fn phone(p: &str) -> Phone {
    Phone::parse(p).unwrap()
}

async fn define(store: &Store) {
    let plan =
        AttributeDef { key: "plan".into(), label: "Plan".into(), kind: AttrType::Enum, options: vec!["Gold".into(), "Silver".into()] };
    store.save_attribute_def(&plan).await.unwrap();
    let meters = AttributeDef { key: "meters".into(), label: "Cable (m)".into(), kind: AttrType::Number, options: vec![] };
    store.save_attribute_def(&meters).await.unwrap();
}

async fn rule(store: &Store, v: serde_json::Value) -> i64 {
    store.create_rule(&RuleSpec::parse(&v).unwrap()).await.unwrap().id
}

async fn runs(store: &Store, rule: i64) -> Vec<RunRow> {
    store.automation_runs(rule, None, 100).await.unwrap()
}

async fn event_types(store: &Store, subject: &str) -> Vec<String> {
    let mut t: Vec<String> = store.events_of(subject, 100).await.unwrap().into_iter().map(|e| e.0).collect();
    t.reverse();
    t
}

#[tokio::test]
async fn a_profile_is_saved_with_its_events_and_the_list_filters_by_tag_attribute_consent_and_text() {
    on_each_backend(|store| async move {
        define(&store).await;
        let mut u = ContactUpdate { name: Some("Thabo".into()), tags: Some(vec!["Crew-A".into()]), ..Default::default() };
        u.attributes.insert("plan".into(), json!("gold"));
        u.attributes.insert("meters".into(), json!("12.5"));
        u.birthday = Some(Some(Birthday { month: 3, day: 14, year: Some(1990) }));
        u.time_zone = Some(Some("Africa/Johannesburg".into()));
        u.consent = Some(ConsentStatus::OptedIn);
        let (c, change) = store.save_contact(&phone(PHONE), &u, "admin@example.com").await.unwrap();
        assert!(change.created);
        assert_eq!(c.attributes.get("plan"), Some(&json!("Gold")), "the option as defined");
        assert_eq!(c.attributes.get("meters"), Some(&json!(12.5)), "typed");
        assert_eq!((c.consent.status, c.consent.source.as_deref()), (ConsentStatus::OptedIn, Some("admin@example.com")));
        assert!(c.consent.at.is_some());
        assert_eq!(c.tags, vec!["Crew-A".to_string()]);
        assert_eq!(event_types(&store, PHONE).await, vec!["contact.created", "contact.tag_added"]);

        // A bad value changes nothing.
        let mut bad = ContactUpdate { name: Some("Renamed".into()), ..Default::default() };
        bad.attributes.insert("plan".into(), json!("Bronze"));
        assert_eq!(store.save_contact(&phone(PHONE), &bad, "x").await.unwrap_err().code(), "invalid_attribute");
        bad.attributes.clear();
        bad.attributes.insert("nope".into(), json!("1"));
        assert_eq!(store.save_contact(&phone(PHONE), &bad, "x").await.unwrap_err().code(), "invalid_attribute");
        assert_eq!(store.contact(&phone(PHONE)).await.unwrap().name, "Thabo");

        // Only what changed is an update; removing an attribute is a change; the same again is none.
        let mut u2 = ContactUpdate { name: Some("Thabo".into()), opted_out: Some(true), ..Default::default() };
        u2.attributes.insert("meters".into(), serde_json::Value::Null);
        let (c2, change) = store.save_contact(&phone(PHONE), &u2, "API key ops").await.unwrap();
        assert_eq!(change.changed, vec!["consent".to_string(), "meters".to_string()]);
        assert!(c2.opted_out && c2.consent.status == ConsentStatus::OptedOut && !c2.attributes.contains_key("meters"));
        let (_, again) = store.save_contact(&phone(PHONE), &u2, "API key ops").await.unwrap();
        assert!(again.changed.is_empty());
        assert_eq!(event_types(&store, PHONE).await, vec!["contact.created", "contact.tag_added", "contact.updated", "contact.opted_out"]);

        store.save_contact(&phone("+27831234567"), &ContactUpdate { name: Some("Sipho".into()), ..Default::default() }, "x").await.unwrap();
        let list = |f: ContactFilter| {
            let store = store.clone();
            async move { store.contacts(&ContactFilter { limit: 50, ..f }).await.unwrap() }
        };
        assert_eq!(list(ContactFilter::default()).await.1, 2);
        let (tagged, n) = list(ContactFilter { tag: Some("crew-a".into()), ..Default::default() }).await;
        assert_eq!((n, tagged[0].phone.as_str()), (1, PHONE), "a tag without regard to case");
        assert_eq!(list(ContactFilter { attribute: Some(("plan".into(), "GOLD".into())), ..Default::default() }).await.1, 1);
        assert_eq!(list(ContactFilter { consent: Some(ConsentStatus::OptedOut), ..Default::default() }).await.1, 1);
        assert_eq!(list(ContactFilter { consent: Some(ConsentStatus::Unknown), ..Default::default() }).await.0[0].name, "Sipho");
        assert_eq!(list(ContactFilter { q: Some("siph".into()), ..Default::default() }).await.1, 1);
        assert_eq!(list(ContactFilter { q: Some("%".into()), ..Default::default() }).await.1, 0, "% is a character, not a wildcard");

        // An attribute's type stays while contacts have values; deleting it removes them.
        let as_text = AttributeDef { key: "plan".into(), label: "Plan".into(), kind: AttrType::Text, options: vec![] };
        assert_eq!(store.save_attribute_def(&as_text).await.unwrap_err().code(), "attribute_in_use");
        store.delete_attribute_def("plan").await.unwrap();
        assert!(store.contact(&phone(PHONE)).await.unwrap().attributes.is_empty());
    })
    .await;
}

#[tokio::test]
async fn contact_triggers_run_their_rules_with_the_attributes_and_set_attribute_does_not_loop() {
    on_each_backend(|store| async move {
        define(&store).await;
        // The number the rule writes to wrote first (a free text needs the 24-hour window).
        store.note_inbound(&phone("+27831234567"), dropcheck_core::now_ms()).await.unwrap();
        let created = rule(
            &store,
            json!({"name": "Welcome", "trigger": {"type": "contact.created"},
            "actions": [{"type": "send_text", "to": "+27831234567", "text": "New contact {{ name }} on {{ plan }}"}]}),
        )
        .await;
        let plan_changed = rule(
            &store,
            json!({"name": "Plan", "trigger": {"type": "contact.updated", "field": "plan"},
            "conditions": {"all": [{"field": "plan", "op": "eq", "value": "Silver"}]},
            "actions": [{"type": "add_tag", "tag": "downgraded"}]}),
        )
        .await;
        let opted_out = rule(
            &store,
            json!({"name": "Out", "trigger": {"type": "contact.opted_out"},
            "actions": [{"type": "set_attribute", "key": "meters", "value": "0"}]}),
        )
        .await;
        // A rule that sets the attribute its own trigger watches runs once per outside change.
        let self_loop = rule(
            &store,
            json!({"name": "Count", "trigger": {"type": "contact.updated", "field": "meters"},
            "actions": [{"type": "set_attribute", "key": "meters", "value": "{{ meters + 1 }}"}]}),
        )
        .await;
        // On save, an attribute that is not defined is refused.
        let undefined = RuleSpec::parse(&json!({"name": "X", "trigger": {"type": "contact.created"},
            "conditions": {"all": [{"field": "colour", "op": "eq", "value": "red"}]}, "actions": [{"type": "add_tag", "tag": "x"}]}))
        .unwrap();
        assert_eq!(store.create_rule(&undefined).await.unwrap_err().code(), "invalid_rule");

        let mut u = ContactUpdate { name: Some("Thabo".into()), ..Default::default() };
        u.attributes.insert("plan".into(), json!("Gold"));
        store.save_contact(&phone(PHONE), &u, "x").await.unwrap();
        let r = runs(&store, created).await;
        assert_eq!(r.len(), 1);
        let msg = store.message(MessageId(r[0].actions[0].message_id.expect("queued"))).await.unwrap();
        assert_eq!(msg.body, "New contact Thabo on Gold", "the contact's attributes are the context");
        assert!(runs(&store, plan_changed).await.is_empty(), "creating is not an update");

        let mut silver = ContactUpdate::default();
        silver.attributes.insert("plan".into(), json!("Silver"));
        store.save_contact(&phone(PHONE), &silver, "x").await.unwrap();
        assert_eq!(runs(&store, plan_changed).await[0].status, "succeeded");
        assert_eq!(store.contact(&phone(PHONE)).await.unwrap().tags, vec!["downgraded".to_string()]);

        store.save_contact(&phone(PHONE), &ContactUpdate { opted_out: Some(true), ..Default::default() }, "x").await.unwrap();
        assert_eq!(runs(&store, opted_out).await.len(), 1);
        // Out set meters = 0 (depth 1) → Count set it to 1 (depth 2) → Count does not run for its own change.
        assert_eq!(runs(&store, self_loop).await.len(), 1);
        assert_eq!(store.contact(&phone(PHONE)).await.unwrap().attributes.get("meters"), Some(&json!(1.0)));
        let touched: Vec<i64> = store.contact_runs(&phone(PHONE), 50).await.unwrap().iter().map(|r| r.rule_id).collect();
        assert_eq!(touched, vec![self_loop, opted_out, plan_changed, created], "the contact's page lists every run that touched it");
    })
    .await;
}

#[tokio::test]
async fn a_birthday_rule_fires_once_per_contact_per_year_at_its_time_in_the_contacts_zone() {
    on_each_backend(|store| async move {
        let id = rule(
            &store,
            json!({"name": "Happy birthday", "trigger": {"type": "contact.birthday", "at": "09:00", "time_zone": "UTC"},
            "actions": [{"type": "send_text", "to": "+27831234567", "text": "{{ name }} has a birthday"}]}),
        )
        .await;
        store.note_inbound(&phone("+27831234567"), dropcheck_core::now_ms()).await.unwrap();
        let mut joburg = ContactUpdate { name: Some("Thabo".into()), ..Default::default() };
        joburg.birthday = Some(Some(Birthday { month: 3, day: 14, year: None }));
        joburg.time_zone = Some(Some("Africa/Johannesburg".into()));
        store.save_contact(&phone(PHONE), &joburg, "x").await.unwrap();
        let mut leap = ContactUpdate { name: Some("Leap".into()), ..Default::default() };
        leap.birthday = Some(Some(Birthday { month: 2, day: 29, year: Some(2000) }));
        store.save_contact(&phone("+27831234567"), &leap, "x").await.unwrap();
        let at = |s: &str| time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).unwrap().unix_timestamp() * 1000;
        // 09:00 in Johannesburg is 07:00 UTC.
        assert_eq!(store.sweep_birthdays(at("2027-03-14T06:59:00Z")).await.unwrap(), 0, "not yet 09:00 there");
        assert_eq!(store.sweep_birthdays(at("2027-03-14T07:00:30Z")).await.unwrap(), 1);
        assert_eq!(store.sweep_birthdays(at("2027-03-14T07:01:00Z")).await.unwrap(), 0, "once");
        assert_eq!(store.sweep_birthdays(at("2027-03-14T21:00:00Z")).await.unwrap(), 0, "once all day");
        assert_eq!(store.sweep_birthdays(at("2027-03-15T08:00:00Z")).await.unwrap(), 0, "not the day after");
        assert_eq!(store.sweep_birthdays(at("2028-03-14T07:30:00Z")).await.unwrap(), 1, "again the next year");
        // Without a time zone the rule's (UTC); 29 February on 28 February when the year has none.
        assert_eq!(store.sweep_birthdays(at("2027-02-28T09:05:00Z")).await.unwrap(), 1);
        assert_eq!(store.sweep_birthdays(at("2028-02-28T09:05:00Z")).await.unwrap(), 0, "2028 has a 29 February");
        assert_eq!(store.sweep_birthdays(at("2028-02-29T09:05:00Z")).await.unwrap(), 1);
        let r = runs(&store, id).await;
        assert_eq!(r.len(), 4);
        assert!(r.iter().all(|r| r.status == "succeeded"), "{r:?}");
    })
    .await;
}

const CSV: &str = "Mobile,Full name,Plan,Tags,Birthday\n\
064 041 2391,Thabo,Gold,crew-a,14/03\n\
+27 83 123 4567,Sipho,,crew-a;late,\n\
0831234567,Sipho twice,,,\n\
not a number,Nobody,,,\n\
+27 82 555 0100,Lerato,Bronze,,\n";

fn mapping(mode: ImportMode, fire_rules: bool) -> ImportMapping {
    let cols = [("Mobile", "phone"), ("Full name", "name"), ("Plan", "attribute:plan"), ("Tags", "tags"), ("Birthday", "birthday")];
    ImportMapping {
        columns: cols.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect(),
        default_region: Some("ZA".into()),
        mode,
        fire_rules,
    }
}

#[tokio::test]
async fn an_import_previews_applies_and_reimports_without_duplicates_and_fires_rules_only_when_asked() {
    on_each_backend(|store| async move {
        define(&store).await;
        let welcome = rule(
            &store,
            json!({"name": "Welcome", "trigger": {"type": "contact.created"},
            "actions": [{"type": "add_tag", "tag": "welcomed"}]}),
        )
        .await;
        let id = store.stage_import("crew.csv", CSV, "admin@example.com").await.unwrap();
        let preview = store.run_import(id, &mapping(ImportMode::Skip, false), true, "admin@example.com").await.unwrap();
        assert_eq!((preview.rows, preview.created, preview.rejected), (5, 2, 3));
        assert_eq!(store.contacts(&ContactFilter { limit: 10, ..Default::default() }).await.unwrap().1, 0, "a preview writes nothing");
        let lines: Vec<(u64, &str)> = preview.rejected_rows.iter().map(|r| (r.line, r.reason.as_str())).collect();
        assert_eq!(lines[0], (4, "the same number as line 3"));
        assert_eq!(lines[1].0, 5);
        assert!(lines[2].1.contains("Bronze"), "{lines:?}");

        let report = store.run_import(id, &mapping(ImportMode::Skip, false), false, "admin@example.com").await.unwrap();
        assert_eq!((report.created, report.updated, report.skipped, report.rejected), (2, 0, 0, 3));
        let thabo = store.contact(&phone(PHONE)).await.unwrap();
        assert_eq!((thabo.name.as_str(), thabo.attributes.get("plan")), ("Thabo", Some(&json!("Gold"))));
        assert_eq!(thabo.birthday, Some(Birthday { month: 3, day: 14, year: None }));
        assert_eq!(store.contact(&phone("+27831234567")).await.unwrap().tags, vec!["crew-a".to_string(), "late".to_string()]);
        assert!(runs(&store, welcome).await.is_empty(), "an import fires no rule unless asked");
        assert_eq!(event_types(&store, PHONE).await[0], "contact.created", "its events are recorded all the same");
        let rejected = store.import_rejected_csv(id).await.unwrap();
        assert!(rejected.starts_with("Mobile,Full name,Plan,Tags,Birthday,line,reason\r\n"));
        assert_eq!(rejected.lines().count(), 4, "a heading and every rejected row: {rejected}");

        // The same file again: nothing new.
        let again = store.stage_import("crew.csv", CSV, "admin@example.com").await.unwrap();
        let r2 = store.run_import(again, &mapping(ImportMode::Skip, true), false, "x").await.unwrap();
        assert_eq!((r2.created, r2.skipped), (0, 2));
        assert_eq!(store.contacts(&ContactFilter { limit: 10, ..Default::default() }).await.unwrap().1, 2);

        // Fill blanks sets only what is missing; overwrite replaces; each asks for rules here.
        store.save_contact(&phone(PHONE), &ContactUpdate { name: Some("Thabo M".into()), ..Default::default() }, "x").await.unwrap();
        let f = store
            .stage_import("more.csv", "phone,name,plan,tz\n+27640412391,Someone,Silver,Africa/Johannesburg\n+27825550199,New,Gold,\n", "x")
            .await
            .unwrap();
        let mut m = ImportMapping {
            columns: [("phone", "phone"), ("name", "name"), ("plan", "attribute:plan"), ("tz", "time_zone")]
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            mode: ImportMode::FillBlanks,
            fire_rules: true,
            ..Default::default()
        };
        let r3 = store.run_import(f, &m, false, "x").await.unwrap();
        assert_eq!((r3.created, r3.updated), (1, 1));
        let t = store.contact(&phone(PHONE)).await.unwrap();
        assert_eq!(
            (t.name.as_str(), t.attributes.get("plan"), t.time_zone.as_deref()),
            ("Thabo M", Some(&json!("Gold")), Some("Africa/Johannesburg"))
        );
        assert_eq!(runs(&store, welcome).await.len(), 1, "asked for: the new contact's rule ran");
        m.mode = ImportMode::Overwrite;
        let r4 = store.run_import(f, &m, false, "x").await.unwrap();
        assert_eq!((r4.created, r4.updated, r4.unchanged), (0, 1, 1));
        let t = store.contact(&phone(PHONE)).await.unwrap();
        assert_eq!((t.name.as_str(), t.attributes.get("plan")), ("Someone", Some(&json!("Silver"))));
    })
    .await;
}

/// A broadcast to a tag: the preflight counts who is eligible and who is excluded and why,
/// the sweep queues at its pace under its daily cap and holds back contacts in their quiet
/// hours, each message once; pause stops it; WhatsApp's error codes act on the recipients.
#[tokio::test]
async fn a_broadcast_goes_to_the_eligible_at_its_pace_and_acts_on_whatsapp_error_codes() {
    on_each_backend(|store| async move {
        use dropcheck_core::contacts::campaign::CampaignSpec;
        let tagged = |consent: Option<ConsentStatus>, tz: Option<&str>| ContactUpdate {
            tags: Some(vec!["crew".into()]),
            consent,
            time_zone: Some(tz.map(str::to_string)),
            ..Default::default()
        };
        let numbers = ["+27640412391", "+27831234567", "+27825550100", "+27825550101", "+27825550102"];
        for n in &numbers[..4] {
            store.save_contact(&phone(n), &tagged(Some(ConsentStatus::OptedIn), None), "x").await.unwrap();
        }
        store.save_contact(&phone(numbers[4]), &tagged(Some(ConsentStatus::OptedIn), Some("Pacific/Kiritimati")), "x").await.unwrap();
        store.save_contact(&phone("+27825550103"), &tagged(None, None), "x").await.unwrap();
        store.save_contact(&phone("+27825550104"), &tagged(Some(ConsentStatus::OptedOut), None), "x").await.unwrap();
        store.save_contact(&phone("+12025550123"), &tagged(Some(ConsentStatus::OptedIn), None), "x").await.unwrap();
        let mut muted = tagged(Some(ConsentStatus::OptedIn), None);
        muted.muted_types = Some(vec!["payment_confirmation".into()]);
        store.save_contact(&phone("+27825550105"), &muted, "x").await.unwrap();

        let spec: CampaignSpec = serde_json::from_value(json!({"name": "December", "template": "payment_confirmation", "tag": "CREW",
            "variables": {"amount": "R 0", "reference": "DEC", "customer_name": "{{ name or phone }}"}, "pace_per_minute": 2, "daily_cap": 3,
            "quiet_hours": {"start": "21:00", "end": "08:00"}})).unwrap();
        let c = store.create_campaign(&spec, "admin@example.com").await.unwrap();
        assert_eq!((c.status.as_str(), c.eligible), ("draft", 5));
        let excluded: Vec<(&str, i64)> = c.excluded.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(excluded, vec![("blocked region (+1)", 1), ("muted payment_confirmation messages", 1), ("not opted in for marketing", 1), ("opted out", 1)]);
        let unknown: CampaignSpec = serde_json::from_value(json!({"name": "x", "template": "nope", "tag": "crew"})).unwrap();
        assert_eq!(store.create_campaign(&unknown, "x").await.unwrap_err().code(), "invalid_campaign");

        assert_eq!(store.campaign_action(c.id, "pause").await.unwrap_err().code(), "invalid_transition");
        let c = store.campaign_action(c.id, "start").await.unwrap();
        assert_eq!((c.recipients.get("pending"), c.recipients.get("excluded")), (Some(&5), Some(&4)));
        // Noon UTC: midnight in Kiritimati (UTC+14), inside its quiet hours.
        let at = |s: &str| time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).unwrap().unix_timestamp() * 1000;
        let noon = at("2027-01-04T12:00:00Z");
        assert_eq!(store.sweep_campaigns(noon).await.unwrap(), 2, "its pace: 2 a minute");
        assert_eq!(store.sweep_campaigns(noon + 30_000).await.unwrap(), 0, "not again within the minute");
        assert_eq!(store.sweep_campaigns(noon + 60_000).await.unwrap(), 1, "the daily cap of 3");
        assert_eq!(store.sweep_campaigns(noon + 120_000).await.unwrap(), 0);
        let c = store.campaign(c.id).await.unwrap();
        assert_eq!(c.recipients.get("queued"), Some(&3));
        // The next day, after 08:00 in Kiritimati (18:00 UTC).
        assert_eq!(store.sweep_campaigns(at("2027-01-05T12:05:00Z")).await.unwrap(), 1, "the one in Johannesburg; Kiritimati is asleep");
        assert_eq!(store.sweep_campaigns(at("2027-01-05T18:10:00Z")).await.unwrap(), 1, "Kiritimati after its quiet hours");
        let c = store.campaign(c.id).await.unwrap();
        assert_eq!((c.status.as_str(), c.recipients.get("queued")), ("done", Some(&5)));
        let (ok, _) = store.contacts(&ContactFilter { limit: 20, ..Default::default() }).await.unwrap();
        assert_eq!(ok.len(), 9);
        let msgs = store.list_messages(&dropcheck_core::outbox::MessageFilter::default(), None, 50).await.unwrap().0;
        let broadcast: Vec<_> = msgs.iter().filter(|m| m.body.contains("DEC")).collect();
        assert_eq!(broadcast.len(), 5, "each eligible contact once");

        // WhatsApp's answers, as a status callback brings them: 131049 tries again after 24 h,
        // 131050 suppresses marketing to the contact, 131048 pauses the campaign.
        let id_of = |n: &str| broadcast.iter().find(|m| m.phone.as_str() == n).map(|m| m.message_id).unwrap();
        let failed = |id: MessageId, code: &str| {
            let store = store.clone();
            let code = code.to_string();
            async move {
                let mut tx = store.begin().await.unwrap();
                tx.message_failed(id, &code, "from the provider").await.unwrap();
                tx.commit().await.unwrap();
            }
        };
        failed(id_of(numbers[0]), "131049").await;
        failed(id_of(numbers[1]), "131050").await;
        let c2 = store.campaign(c.id).await.unwrap();
        assert_eq!((c2.recipients.get("later"), c2.recipients.get("failed")), (Some(&1), Some(&1)));
        assert_eq!(store.contact(&phone(numbers[1])).await.unwrap().consent.status, ConsentStatus::Unknown, "suppressed: no more marketing");
        let capped = store.create_campaign(&spec, "x").await.unwrap();
        assert_eq!(capped.excluded.get("had a broadcast in the last 24 h (frequency cap)"), Some(&4), "{:?}", capped.excluded);
        let no_cap = CampaignSpec { frequency_hours: 0, ..spec.clone() };
        let again = store.create_campaign(&no_cap, "x").await.unwrap();
        assert_eq!(again.excluded.get("not opted in for marketing"), Some(&2), "the suppressed contact is excluded next time");
        store.campaign_action(again.id, "start").await.unwrap();
        let later = at("2027-01-07T12:00:00Z");
        assert_eq!(store.sweep_campaigns(later).await.unwrap(), 2);
        let queued = store.list_messages(&dropcheck_core::outbox::MessageFilter::default(), None, 50).await.unwrap().0;
        let second = queued.iter().find(|m| m.body.contains("DEC") && !broadcast.iter().any(|b| b.message_id == m.message_id)).unwrap();
        let admin = store.create_user(&dropcheck_core::domain::Email::parse("ops@example.com").unwrap(), "x", dropcheck_core::domain::Role::Admin).await.unwrap();
        dropcheck_core::testing::execute_raw(&store, &format!("update app_user set phone = '+27829990000' where user_id = {}", admin.user_id.get())).await;
        failed(second.message_id, "131048").await;
        let told = store.list_messages(&dropcheck_core::outbox::MessageFilter { phone: Some("27829990000".into()), ..Default::default() }, None, 5).await.unwrap().0;
        assert_eq!(told.len(), 1, "the admins are told");
        assert!(told[0].body.contains("paused the broadcast \"December\"") && told[0].body.contains("131048"), "{}", told[0].body);
        let paused = store.campaign(again.id).await.unwrap();
        assert_eq!(paused.status, "paused");
        assert!(paused.detail.contains("131048"), "{}", paused.detail);
        assert_eq!(store.sweep_campaigns(later + 120_000).await.unwrap(), 0, "a paused campaign queues nothing");
        assert_eq!(store.campaign_action(again.id, "start").await.unwrap().status, "running", "resumed");
        assert_eq!(store.campaign_action(again.id, "cancel").await.unwrap().status, "cancelled");
        assert_eq!(store.sweep_campaigns(later + 240_000).await.unwrap(), 0);
    })
    .await;
}
