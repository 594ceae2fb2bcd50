//! The contractor's conversation (drop numbers, photos, DONE, the commands) through the inbox on both backends: the
//! commands, context expiry, opt-out, the reply limit, the inbox's ordering and leases.

use dropcheck_core::conversation::{CONTEXT_IDLE_MS, REPLIES_PER_MINUTE};
use dropcheck_core::domain::{Direction, DropNumber, DEFAULT_DROP_PATTERN};
use dropcheck_core::ids::EventId;
use dropcheck_core::inbox::{EventOutcome, ReadyEvent, Work};
use dropcheck_core::media::{demo_photo, MediaStore, StoredMedia};
use dropcheck_core::outbox::MessageFilter;
use dropcheck_core::outbox::RetryPolicy;
use dropcheck_core::providers::{DeliveryStatus, InboundMessage, MediaRef, MessageKind, Provider, StatusUpdate, WebhookEvent};
use dropcheck_core::store::Store;
use dropcheck_core::testing::on_each_backend;
use std::sync::atomic::{AtomicU32, Ordering};

const PHONE: &str = "+27640412391";
static SEQ: AtomicU32 = AtomicU32::new(0);

fn text(body: &str) -> InboundMessage {
    InboundMessage {
        provider_id: format!("SM{}", SEQ.fetch_add(1, Ordering::Relaxed)),
        from: PHONE.into(),
        profile_name: "Sipho".into(),
        body: body.into(),
        kind: MessageKind::Text,
        media: vec![],
    }
}

/// The bodies of the replies queued for the contractor, oldest first.
async fn replies(store: &Store) -> Vec<String> {
    let f = MessageFilter { direction: Some(Direction::Out), ..Default::default() };
    let (rows, _) = store.list_messages(&f, None, 200).await.unwrap();
    rows.into_iter().rev().map(|m| m.body).collect()
}

async fn say(store: &Store, body: &str, now: i64) -> String {
    store.handle_message(&text(body), &[], now).await.unwrap()
}

async fn photo(media: &MediaStore, n: u32) -> StoredMedia {
    media.store_image(demo_photo("DR12345678", n as i64, "x", n)).await.unwrap()
}

#[tokio::test]
async fn commands_context_and_opt_out() {
    on_each_backend(|store| async move {
        store.create_project("Velo Test", DEFAULT_DROP_PATTERN).await.unwrap();
        store.create_project("Other", "^OT[0-9]{6}$").await.unwrap();
        let t0 = dropcheck_core::now_ms();
        let mut now = t0;
        let mut tick = || {
            now += 61_000; // a minute apart: the reply limit never interferes here
            now
        };

        say(&store, "/help", tick()).await;
        assert!(replies(&store).await.last().unwrap().contains("DR12345678 DONE — submit"));
        say(&store, "/status", tick()).await;
        assert!(replies(&store).await.last().unwrap().contains("No active drop"));
        say(&store, "what?", tick()).await;
        assert!(replies(&store).await.last().unwrap().contains("/help"));

        // A drop number the project's pattern refuses gets a clear reply, no drop.
        say(&store, "/project Other", tick()).await;
        assert!(replies(&store).await.last().unwrap().contains("Project set to Other"));
        say(&store, "DR12345678", tick()).await;
        assert!(replies(&store).await.last().unwrap().contains("does not match"), "{:?}", replies(&store).await.last());
        say(&store, "/project Nope", tick()).await;
        assert!(replies(&store).await.last().unwrap().contains("Velo Test"));
        say(&store, "/project Velo Test", tick()).await;
        // The live views' fingerprints move when a drop appears or changes.
        let list_before = store.list_fingerprint().await.unwrap();
        assert_eq!(store.drop_fingerprint(&DropNumber::parse("DR12345678").unwrap()).await.unwrap(), None);
        say(&store, "DR12345678", tick()).await;
        assert_ne!(store.list_fingerprint().await.unwrap(), list_before);
        let drop_before = store.drop_fingerprint(&DropNumber::parse("DR12345678").unwrap()).await.unwrap();
        assert!(drop_before.is_some());
        assert!(replies(&store).await.last().unwrap().starts_with("Drop DR12345678 (Velo Test): 0 of 12"));
        say(&store, "/status", tick()).await;
        assert!(replies(&store).await.last().unwrap().contains("Active drop DR12345678"));
        assert_ne!(
            store.drop_fingerprint(&DropNumber::parse("DR12345678").unwrap()).await.unwrap(),
            drop_before,
            "a new reply on the drop"
        );
        say(&store, "/drops", tick()).await;
        assert!(replies(&store).await.last().unwrap().contains("DR12345678 — Collecting"));
        say(&store, "/clear", tick()).await;
        say(&store, "/status", tick()).await;
        assert!(replies(&store).await.last().unwrap().contains("No active drop"));

        // The context expires after 30 idle minutes.
        say(&store, "DR12345678", tick()).await;
        let later = tick() + CONTEXT_IDLE_MS + 1;
        say(&store, "/status", later).await;
        assert!(replies(&store).await.last().unwrap().contains("No active drop"));

        // STOP: confirmed, then nothing else is queued; the inbound is still stored and processed.
        let n = replies(&store).await.len();
        say(&store, "STOP", later + 1).await;
        assert!(replies(&store).await.last().unwrap().contains("START to resume"));
        let r = say(&store, "DR12345678 DONE", later + 2).await;
        assert!(r.contains("opted out"), "{r}");
        assert_eq!(replies(&store).await.len(), n + 1);
        let f = MessageFilter { direction: Some(Direction::In), ..Default::default() };
        assert!(store.list_messages(&f, None, 200).await.unwrap().0.iter().any(|m| m.body == "DR12345678 DONE"));
        say(&store, "START", later + 3).await;
        assert!(replies(&store).await.last().unwrap().contains("Welcome back"));
    })
    .await;
}

#[tokio::test]
async fn replies_are_limited_per_minute_and_photos_held_until_a_drop_number() {
    on_each_backend(|store| async move {
        store.create_project("Velo Test", DEFAULT_DROP_PATTERN).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let media = MediaStore::new(dir.path());
        let now = dropcheck_core::now_ms();
        for i in 0..15 {
            say(&store, "hello?", now + i).await;
        }
        assert_eq!(replies(&store).await.len() as i64, REPLIES_PER_MINUTE, "at most 10 replies a minute");
        let f = MessageFilter { direction: Some(Direction::In), ..Default::default() };
        assert_eq!(store.list_messages(&f, None, 200).await.unwrap().0.len(), 15, "every inbound message is kept");

        // A minute later: photos before a drop number are held (one "which drop?" reply), then filed.
        let t = now + 120_000;
        let mut m = text("");
        m.kind = MessageKind::Media;
        for n in 1..=3 {
            let p = photo(&media, n).await;
            m.provider_id = format!("MMheld{n}");
            store.handle_message(&m, &[Ok(p)], t + n as i64).await.unwrap();
        }
        let held_replies = replies(&store).await.iter().filter(|b| b.contains("Which drop")).count();
        assert_eq!(held_replies, 1, "one reply for the burst");
        say(&store, "DR12345678", t + 10).await;
        let d = store.drop_detail(&DropNumber::parse("DR12345678").unwrap()).await.unwrap();
        assert_eq!(d.steps.iter().take(3).map(|s| s.photos.len()).collect::<Vec<_>>(), vec![1, 1, 1]);
        assert!(replies(&store).await.last().unwrap().contains("3 of 12"));

        // A replayed event files nothing twice.
        let p = photo(&media, 1).await;
        m.provider_id = "MMagain".into();
        store.handle_message(&m, &[Ok(p)], t + 20).await.unwrap();
        let d = store.drop_detail(&DropNumber::parse("DR12345678").unwrap()).await.unwrap();
        assert_eq!(d.steps.iter().map(|s| s.photos.len()).sum::<usize>(), 3);
    })
    .await;
}

#[tokio::test]
async fn events_of_one_number_are_processed_in_order_with_leases() {
    on_each_backend(|store| async move {
        let now = dropcheck_core::now_ms();
        let ev = |id: &str, from: &str| WebhookEvent::Message(InboundMessage { provider_id: id.into(), from: from.into(), ..text("x") });
        let batch = vec![ev("A1", "+27640000001"), ev("A2", "+27640000001"), ev("B1", "+27640000002")];
        let out = store.record_webhook(Provider::Twilio, "/webhooks/twilio", "x", "raw", &Ok(batch.clone()), now).await.unwrap();
        assert_eq!((out.new_events, out.duplicates), (3, 0));
        let again = store.record_webhook(Provider::Twilio, "/webhooks/twilio", "x", "raw", &Ok(batch), now).await.unwrap();
        assert_eq!((again.new_events, again.duplicates), (0, 3));

        let a1 = store.claim_event(now, 1000).await.unwrap().unwrap();
        let b1 = store.claim_event(now, 1000).await.unwrap().unwrap();
        let key = |e: &dropcheck_core::inbox::ClaimedEvent| match &e.event {
            WebhookEvent::Message(m) => m.provider_id.clone(),
            _ => unreachable!(),
        };
        assert_eq!((key(&a1), key(&b1)), ("A1".into(), "B1".into()), "A2 waits for A1");
        assert!(store.claim_event(now, 1000).await.unwrap().is_none());
        store.finish_event(b1.event_id, &EventOutcome::Done("ok".into()), now).await.unwrap();
        // A1's worker dies: after the lease, A1 is claimable again, still before A2.
        let again = store.claim_event(now + 2000, 1000).await.unwrap().unwrap();
        assert_eq!((key(&again), again.attempts), ("A1".into(), 2));
        store.finish_event(again.event_id, &EventOutcome::Retry { error: "media".into(), at: now + 5000 }, now + 2000).await.unwrap();
        assert!(store.claim_event(now + 3000, 1000).await.unwrap().is_none(), "A2 waits while A1 backs off");
        let a1 = store.claim_event(now + 5000, 1000).await.unwrap().unwrap();
        store.finish_event(a1.event_id, &EventOutcome::Done("ok".into()), now + 5000).await.unwrap();
        let a2 = store.claim_event(now + 5000, 1000).await.unwrap().unwrap();
        assert_eq!(key(&a2), "A2");
        store.finish_event(a2.event_id, &EventOutcome::Failed("bad".into()), now + 5000).await.unwrap();
        store.requeue_event(a2.event_id, now + 6000).await.unwrap();
        assert_eq!(key(&store.claim_event(now + 6000, 1000).await.unwrap().unwrap()), "A2", "a failed event can be reprocessed");
    })
    .await;
}

#[tokio::test]
async fn a_batch_applies_in_one_transaction_and_keeps_each_numbers_order() {
    on_each_backend(|store| async move {
        let now = dropcheck_core::now_ms();
        let ev = |id: &str, from: &str, body: &str| {
            WebhookEvent::Message(InboundMessage { provider_id: id.into(), from: from.into(), ..text(body) })
        };
        let status = WebhookEvent::Status(StatusUpdate {
            provider_id: "SMnot-sent-here".into(),
            status: DeliveryStatus::Delivered,
            recipient: None,
            error_code: None,
            error_text: None,
        });
        let events = vec![
            ev("A1", "+27640000001", "DR12345671"),
            ev("B1", "+27640000002", "DR12345672"),
            ev("A2", "+27640000001", "/status"),
            ev("B2", "+27640000002", "/status"),
            status,
        ];
        store.record_webhook(Provider::Twilio, "/webhooks/twilio", "x", "raw", &Ok(events), now).await.unwrap();
        store.create_project("Velo Test", DEFAULT_DROP_PATTERN).await.unwrap();
        let claimed = store.claim_events(now, 60_000, 100).await.unwrap();
        assert_eq!(claimed.len(), 5, "one statement claims the batch, several events of a number in order");
        let id_of = |key: &str| {
            claimed
                .iter()
                .find(|c| match &c.event {
                    WebhookEvent::Message(m) => m.provider_id == key,
                    WebhookEvent::Status(_) => key == "status",
                })
                .unwrap()
                .event_id
        };
        let (a1, a2, b1, b2, st) = (id_of("A1"), id_of("A2"), id_of("B1"), id_of("B2"), id_of("status"));
        // A1's media must be fetched again later: A2 must not overtake it.
        let ready: Vec<ReadyEvent> = claimed
            .into_iter()
            .map(|c| {
                let work = if c.event_id == a1 {
                    Work::Decided(EventOutcome::Retry { error: "media".into(), at: now + 5_000 })
                } else {
                    Work::Apply(vec![])
                };
                ReadyEvent { event: c, work }
            })
            .collect();
        let policy = RetryPolicy { base_ms: 100, cap_ms: 1_000, horizon_ms: 60_000 };
        let outcomes = store.process_events(ready, &policy, now).await.unwrap();
        let outcome = |id: EventId| outcomes.iter().find(|(e, _)| *e == id).map(|(_, o)| o.clone());
        assert!(matches!(outcome(a1), Some(EventOutcome::Retry { .. })));
        assert!(outcome(a2).is_none(), "A2 is given back, not processed");
        assert!(matches!(outcome(b1), Some(EventOutcome::Done(_))));
        assert!(matches!(outcome(b2), Some(EventOutcome::Done(_))));
        // A status for a message not sent (yet) waits a little; the rest of the batch stands.
        assert!(matches!(outcome(st), Some(EventOutcome::Retry { .. })), "{:?}", outcome(st));
        let drop = store.drop_detail(&DropNumber::parse("DR12345672").unwrap()).await.unwrap();
        assert_eq!(drop.contractor.as_ref().map(|c| c.phone.as_str()), Some("+27640000002"));
        assert!(store.drop_detail(&DropNumber::parse("DR12345671").unwrap()).await.is_err(), "A1 was not applied");
        let rows = store.recent_events(10).await.unwrap();
        let row = |id: EventId| rows.iter().find(|r| r.event_id == id).unwrap().clone();
        assert_eq!((row(a2).state.as_str(), row(a2).attempts), ("pending", 0), "given back with its attempt not counted");
        assert_eq!(row(b2).state, "done");
        let result = row(b2).result.unwrap();
        assert!(result.contains("reply status queued"), "{result}");
        // B2 saw what B1 did earlier in the same transaction: its status names B1's drop.
        let (rows, _) = store.list_messages(&MessageFilter::default(), None, 200).await.unwrap();
        let status_reply = rows.iter().find(|m| m.phone == "+27640000002" && m.template.as_deref() == Some("status")).unwrap();
        assert!(status_reply.body.contains("DR12345672"), "{}", status_reply.body);
        // While A1 backs off, nothing of A is claimable; then A1 comes first.
        assert!(store.claim_events(now + 1_000, 60_000, 100).await.unwrap().iter().all(|c| c.phone != "+27640000001"));
        let later = store.claim_events(now + 5_000, 60_000, 100).await.unwrap();
        let a: Vec<EventId> = later.iter().filter(|c| c.phone == "+27640000001").map(|c| c.event_id).collect();
        assert_eq!(a, vec![a1, a2]);
    })
    .await;
}

#[tokio::test]
async fn an_event_that_fails_mid_batch_is_undone_alone_and_the_rest_commits_once() {
    on_each_backend(|store| async move {
        let now = dropcheck_core::now_ms();
        store.create_project("Velo Test", DEFAULT_DROP_PATTERN).await.unwrap();
        let ev = |id: &str, from: &str, body: &str| {
            WebhookEvent::Message(InboundMessage { provider_id: id.into(), from: from.into(), ..text(body) })
        };
        let pdf_ref =
            MediaRef { url: Some("https://media.example/1".into()), media_id: None, content_type: "application/pdf".into(), sha256: None };
        let file = WebhookEvent::Message(InboundMessage {
            provider_id: "X2".into(),
            from: "+27640000003".into(),
            kind: MessageKind::Media,
            media: vec![pdf_ref],
            ..text("")
        });
        let events =
            vec![ev("B1", "+27640000002", "DR12345672"), ev("X1", "+27640000003", "DR12345673"), file, ev("B2", "+27640000002", "/status")];
        store.record_webhook(Provider::Twilio, "/webhooks/twilio", "x", "raw", &Ok(events), now).await.unwrap();
        // X2 brings a PDF, and the table it is kept in is gone: X2 fails after its inbound
        // message row was written in the batch's transaction.
        dropcheck_core::testing::execute_raw(&store, "drop table attachment").await;
        let claimed = store.claim_events(now, 60_000, 100).await.unwrap();
        assert_eq!(claimed.len(), 4);
        let x2 = claimed.iter().filter(|c| c.phone == "+27640000003").map(|c| c.event_id).max().unwrap();
        let pdf = StoredMedia {
            sha256: "ab".repeat(32),
            mime_type: "application/pdf".into(),
            size_bytes: 9,
            width: 0,
            height: 0,
            measures: None,
            pdq: None,
            phash: None,
            similar: Default::default(),
        };
        let ready: Vec<ReadyEvent> = claimed
            .into_iter()
            .map(|c| {
                let work = Work::Apply(if c.event_id == x2 { vec![Ok(pdf.clone())] } else { vec![] });
                ReadyEvent { event: c, work }
            })
            .collect();
        let policy = RetryPolicy { base_ms: 100, cap_ms: 1_000, horizon_ms: 60_000 };
        let outcomes = store.process_events(ready, &policy, now).await.unwrap();
        assert_eq!(outcomes.len(), 4, "{outcomes:?}");
        for (id, o) in &outcomes {
            if *id == x2 {
                assert!(!matches!(o, EventOutcome::Done(_)), "X2 failed: {o:?}");
            } else {
                assert!(matches!(o, EventOutcome::Done(_)), "{o:?}");
            }
        }
        // X2 left nothing behind (its inbound row is undone); its failure is in the ledger.
        // X1, before it, stands: its drop, its inbound row, its reply.
        let all = MessageFilter::default();
        let (rows, _) = store.list_messages(&all, None, 200).await.unwrap();
        let x: Vec<_> = rows.iter().filter(|m| m.phone == "+27640000003").map(|m| (m.direction.as_str(), m.template.as_deref())).collect();
        assert_eq!(x.len(), 2, "X1's message and its reply only: {x:?}");
        assert!(x.contains(&("out", Some("drop_opened"))), "{x:?}");
        assert!(store.drop_detail(&DropNumber::parse("DR12345673").unwrap()).await.is_ok(), "X1's drop stands");
        let row = store.recent_events(10).await.unwrap().into_iter().find(|r| r.event_id == x2).unwrap();
        assert_eq!((row.state.as_str(), row.error.as_deref()), ("pending", Some("database error")), "to be tried again");
        // B1 and B2 were applied once (the batch was applied again, event by event, after
        // the first attempt was rolled back): one drop, one inbound row each, one reply each.
        let drop = store.drop_detail(&DropNumber::parse("DR12345672").unwrap()).await.unwrap();
        assert_eq!(drop.history.iter().filter(|h| h.kind == "created").count(), 1, "{:?}", drop.history);
        let b: Vec<_> = rows.iter().filter(|m| m.phone == "+27640000002").collect();
        assert_eq!(b.iter().filter(|m| m.direction.as_str() == "in").count(), 2);
        let replies: Vec<_> = b.iter().filter(|m| m.direction.as_str() == "out").map(|m| m.template.clone().unwrap_or_default()).collect();
        assert_eq!(replies.iter().filter(|t| *t == "drop_opened").count(), 1, "{replies:?}");
        assert_eq!(replies.iter().filter(|t| *t == "status").count(), 1, "{replies:?}");
        // X1's conversation was written with the batch (X2's rollback did not take it back):
        // the number's next message is still about X1's drop.
        let x3 = InboundMessage { from: "+27640000003".into(), ..text("/status") };
        let result = store.handle_message(&x3, &[], now + 1_000).await.unwrap();
        assert!(result.contains("reply status queued"), "{result}");
        let (rows, _) = store.list_messages(&all, None, 200).await.unwrap();
        let status_reply = rows.iter().find(|m| m.phone == "+27640000003" && m.template.as_deref() == Some("status")).unwrap();
        assert!(status_reply.body.contains("DR12345673"), "{}", status_reply.body);
    })
    .await;
}

#[tokio::test]
async fn fixes_for_an_incomplete_drop_are_acknowledged_as_one_burst() {
    on_each_backend(|store| async move {
        use dropcheck_core::domain::{StepNo, Verdict};
        use dropcheck_core::store::{ActorRef, StepVerdict};
        store.create_project("Velo Test", DEFAULT_DROP_PATTERN).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let media = MediaStore::new(dir.path());
        let t = dropcheck_core::now_ms();
        say(&store, "DR12345678", t).await;
        let mut m = text("");
        m.kind = MessageKind::Media;
        for n in 1..=12 {
            m.provider_id = format!("MMall{n}");
            store.handle_message(&m, &[Ok(photo(&media, n).await)], t + n as i64).await.unwrap();
        }
        say(&store, "DR12345678 DONE", t + 100).await;
        let dn = DropNumber::parse("DR12345678").unwrap();
        let qa = ActorRef::system("qa");
        let v = |n: i64| StepVerdict { step: StepNo::new(n).unwrap(), verdict: Verdict::Missing, reason: None, note: String::new() };
        store.set_verdicts(&dn, &[v(3), v(7)], &qa).await.unwrap();
        store.mark_incomplete(&dn, &qa).await.unwrap();
        for (i, n) in [20u32, 21].into_iter().enumerate() {
            m.provider_id = format!("MMfix{n}");
            store.handle_message(&m, &[Ok(photo(&media, n).await)], t + 200 + i as i64).await.unwrap();
        }
        let all = replies(&store).await;
        let acks: Vec<&String> = all.iter().filter(|b| b.starts_with("Got ")).collect();
        assert_eq!(acks.last().unwrap().split(':').next().unwrap(), "Got 2 photos for DR12345678", "{acks:?}");
        assert!(acks.last().unwrap().contains("steps 3, 7"), "{acks:?}");
    })
    .await;
}

/// Issue 10, item 2: a drop whose every step has a photo goes to review by itself (in its
/// history, and the acknowledgment says it is with QA), also when the photos were held
/// before the drop number; a project that waits for DONE keeps it collecting.
#[tokio::test]
async fn a_drop_completes_itself_when_every_step_has_a_photo() {
    on_each_backend(|store| async move {
        let project = store.create_project("Velo Test", DEFAULT_DROP_PATTERN).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let media = MediaStore::new(dir.path());
        let t = dropcheck_core::now_ms();
        let dn = DropNumber::parse("DR12345678").unwrap();
        say(&store, "DR12345678", t).await;
        let mut m = text("");
        m.kind = MessageKind::Media;
        for n in 1..=11 {
            m.provider_id = format!("MMauto{n}");
            store.handle_message(&m, &[Ok(photo(&media, n).await)], t + n as i64).await.unwrap();
        }
        assert_eq!(store.drop_summary(&dn).await.unwrap().status.as_str(), "collecting", "one step still has no photo");
        m.provider_id = "MMauto12".into();
        store.handle_message(&m, &[Ok(photo(&media, 12).await)], t + 12).await.unwrap();
        let d = store.drop_detail(&dn).await.unwrap();
        assert_eq!(d.status, dropcheck_core::domain::DropStatus::Unreviewed, "no DONE needed");
        assert!(d.history.iter().any(|h| h.detail.contains("Unreviewed (every step has a photo)")), "{:?}", d.history);
        let ack = replies(&store).await.into_iter().filter(|b| b.starts_with("Got ")).last().unwrap();
        assert!(ack.contains("DR12345678 is now with QA") && ack.contains("still send photos"), "{ack}");
        assert!(!ack.contains("DONE"), "the contractor is not asked for DONE: {ack}");
        // A DONE out of habit is confirmed, not answered "nothing to do".
        say(&store, "DR12345678 DONE", t + 20).await;
        assert!(replies(&store).await.last().unwrap().contains("submitted for review"));

        // Photos held before the drop number: the number files them and completes the drop.
        let mut m2 = text("");
        m2.kind = MessageKind::Media;
        m2.from = "+27640412392".into();
        for n in 1..=12 {
            m2.provider_id = format!("MMheld{n}");
            store.handle_message(&m2, &[Ok(photo(&media, 20 + n).await)], t + 100 + n as i64).await.unwrap();
        }
        let mut number = text("DR12345690");
        number.from = "+27640412392".into();
        store.handle_message(&number, &[], t + 200).await.unwrap();
        let d = store.drop_detail(&DropNumber::parse("DR12345690").unwrap()).await.unwrap();
        assert_eq!(d.status, dropcheck_core::domain::DropStatus::Unreviewed);
        assert!(replies(&store).await.last().unwrap().contains("It is with QA for review"));

        // "Wait for DONE": twelve photos keep the drop collecting until DONE.
        store.set_wait_for_done(project.project_id, true).await.unwrap();
        assert!(store.project(project.project_id).await.unwrap().wait_for_done);
        say(&store, "DR12345679", t + 300).await;
        for n in 1..=12 {
            m.provider_id = format!("MMwait{n}");
            store.handle_message(&m, &[Ok(photo(&media, 40 + n).await)], t + 300 + n as i64).await.unwrap();
        }
        let wait = DropNumber::parse("DR12345679").unwrap();
        assert_eq!(store.drop_summary(&wait).await.unwrap().status.as_str(), "collecting");
        let ack = replies(&store).await.into_iter().filter(|b| b.starts_with("Got ")).last().unwrap();
        assert!(ack.contains("Send DR12345679 DONE when you are finished"), "{ack}");
        say(&store, "DR12345679 DONE", t + 400).await;
        assert_eq!(store.drop_summary(&wait).await.unwrap().status.as_str(), "unreviewed");
    })
    .await;
}

/// The inbox keeps the templates, projects and checklists in memory between batches; every
/// change to them, through the store or straight in the database, applies from the next event.
#[tokio::test]
async fn settings_changes_apply_from_the_next_event() {
    on_each_backend(|store| async move {
        let p = store.create_project("Velo Test", DEFAULT_DROP_PATTERN).await.unwrap();
        let mut now = dropcheck_core::now_ms();
        let mut tick = || {
            now += 61_000;
            now
        };
        say(&store, "/help", tick()).await;
        let first = replies(&store).await.last().unwrap().clone();
        say(&store, "/help", tick()).await;
        assert_eq!(replies(&store).await.last().unwrap(), &first, "the same settings, the same reply");

        // A template edited through the store.
        let mut t = store.template("help").await.unwrap();
        t.body = "Edited help.".into();
        let input = dropcheck_core::template_store::TemplateInput {
            name: t.name.clone(),
            body: t.body.clone(),
            description: t.description.clone().unwrap_or_default(),
            sample_vars: "{}".into(),
            provider_template: String::new(),
            enabled: true,
        };
        store.save_template(&input, false).await.unwrap();
        say(&store, "/help", tick()).await;
        assert_eq!(replies(&store).await.last().unwrap(), "Edited help.");

        // ... and straight in the database (a trigger moves the version).
        dropcheck_core::testing::execute_raw(&store, "update message_template set body = 'Raw help.' where name = 'help'").await;
        say(&store, "/help", tick()).await;
        assert_eq!(replies(&store).await.last().unwrap(), "Raw help.");
        store.set_template_enabled("help", false).await.unwrap();
        let n = replies(&store).await.len();
        let r = say(&store, "/help", tick()).await;
        assert!(r.contains("template disabled"), "{r}");
        assert_eq!(replies(&store).await.len(), n);

        // A checklist edited, a project added.
        let steps = vec![("Front".to_string(), "house".to_string()), ("Meter".to_string(), String::new())];
        store.update_project(p.project_id, DEFAULT_DROP_PATTERN, &steps).await.unwrap();
        say(&store, "DR12345678", tick()).await;
        assert!(
            replies(&store).await.last().unwrap().starts_with("Drop DR12345678 (Velo Test): 0 of 2"),
            "{:?}",
            replies(&store).await.last()
        );
        say(&store, "/project Second", tick()).await;
        assert!(replies(&store).await.last().unwrap().contains("Velo Test"), "not known yet");
        let second = store.create_project("Second", "^SE[0-9]{6}$").await.unwrap();
        say(&store, "/project Second", tick()).await;
        assert!(replies(&store).await.last().unwrap().contains("Project set to Second"));
        say(&store, "SE123456", tick()).await;
        assert!(replies(&store).await.last().unwrap().starts_with("Drop SE123456 (Second): 0 of 12"), "{:?}", replies(&store).await.last());
        let sql = format!("delete from checklist_step where step_no > 3 and project_id = {}", second.project_id);
        dropcheck_core::testing::execute_raw(&store, &sql).await;
        say(&store, "/status", tick()).await;
        assert!(replies(&store).await.last().unwrap().contains("0 of 3"), "{:?}", replies(&store).await.last());
    })
    .await;
}

/// The ingest writer's group commit: many webhooks recorded in one call (a statement per table
/// for all of them); each receipt keeps its own path, time, verdict, counts and events, with
/// duplicates inside the group and of an earlier group counted as such.
#[tokio::test]
async fn a_group_of_webhooks_is_recorded_receipt_by_receipt() {
    use dropcheck_core::error::InputError;
    use dropcheck_core::inbox::WebhookIn;
    on_each_backend(|store| async move {
        let t0 = dropcheck_core::now_ms();
        let earlier = WebhookEvent::Message(text("earlier"));
        store.record_webhook(Provider::Twilio, "/webhooks/twilio", "x", "raw", &Ok(vec![earlier.clone()]), t0).await.unwrap();
        let mut batch = vec![];
        let mut expected = vec![]; // (verdict, new events, duplicates)
        let mut last_new: Option<WebhookEvent> = None;
        for i in 0..300i64 {
            let fresh = WebhookEvent::Message(text(&format!("body {i}")));
            let (parsed, want) = match i % 10 {
                3 => (Err(InputError::new("malformed", "not a webhook")), ("rejected", 0, 0)),
                5 => (Ok(vec![fresh.clone(), WebhookEvent::Message(text("second"))]), ("accepted", 2, 0)),
                7 => (Ok(vec![earlier.clone()]), ("accepted", 0, 1)),
                9 => (Ok(vec![last_new.clone().unwrap(), fresh.clone()]), ("accepted", 1, 1)),
                _ => (Ok(vec![fresh.clone()]), ("accepted", 1, 0)),
            };
            last_new = Some(fresh);
            expected.push(want);
            batch.push(WebhookIn {
                provider: Provider::Twilio,
                path: format!("/webhooks/twilio/{i}"),
                content_type: "x".into(),
                body: format!("raw {i}"),
                parsed,
                received_at: t0 + 1 + i,
            });
        }
        let out = store.record_webhooks(&batch).await.unwrap();
        assert_eq!(out.len(), 300);
        let receipts = store.recent_receipts(1000).await.unwrap();
        let events = store.recent_events(1000).await.unwrap();
        for (i, (o, (verdict, new, dup))) in out.iter().zip(&expected).enumerate() {
            assert_eq!((o.new_events, o.duplicates), (*new, *dup), "webhook {i}");
            let r = receipts.iter().find(|r| r.receipt_id == o.receipt_id).unwrap();
            assert_eq!(r.path, format!("/webhooks/twilio/{i}"), "webhook {i}'s receipt");
            assert_eq!(r.received_at, t0 + 1 + i as i64);
            assert_eq!((r.verdict.as_str(), r.event_count, r.duplicate_count), (*verdict, *new as i64, *dup as i64), "webhook {i}");
            let mine: Vec<_> = events.iter().filter(|e| e.receipt_id == Some(o.receipt_id)).collect();
            assert_eq!(mine.len(), *new, "webhook {i}'s events");
            assert!(mine.iter().all(|e| e.received_at == r.received_at));
        }
        assert_eq!(events.len(), 1 + expected.iter().map(|(_, n, _)| n).sum::<usize>());
    })
    .await;
}

/// Retention: receipts and finished events older than the cut-off go, in batches of 500;
/// a pending event stays however old, and so does everything recent.
#[tokio::test]
async fn old_webhook_receipts_and_finished_events_are_purged_in_batches() {
    use dropcheck_core::inbox::WebhookIn;
    on_each_backend(|store| async move {
        let now = dropcheck_core::now_ms();
        let old = now - 100 * 86_400_000;
        let webhook = |i: usize, at: i64| {
            let m = InboundMessage { from: format!("+2764{:07}", 1_000_000 + i), ..text(&format!("old {i}")) };
            WebhookIn {
                provider: Provider::Twilio,
                path: "/webhooks/twilio".into(),
                content_type: "x".into(),
                body: format!("raw {i}"),
                parsed: Ok(vec![WebhookEvent::Message(m)]),
                received_at: at,
            }
        };
        let batch: Vec<WebhookIn> = (0..1_100).map(|i| webhook(i, old + i as i64)).collect();
        for chunk in batch.chunks(250) {
            store.record_webhooks(chunk).await.unwrap();
        }
        store.record_webhooks(&[webhook(5_000, now), webhook(5_001, now)]).await.unwrap();
        // All but one of the old events finish (failed, as decided); the last stays pending.
        let policy = RetryPolicy { base_ms: 100, cap_ms: 1_000, horizon_ms: 60_000 };
        let mut finished = 0;
        while finished < 1_099 {
            let claimed = store.claim_events(now, 60_000, (1_099 - finished).min(400) as i64).await.unwrap();
            assert!(!claimed.is_empty());
            finished += claimed.len();
            let ready = claimed
                .into_iter()
                .map(|c| ReadyEvent { event: c, work: Work::Decided(EventOutcome::Failed("retention test".into())) })
                .collect();
            store.process_events(ready, &policy, now).await.unwrap();
        }
        assert_eq!(store.event_counts().await.unwrap(), (3, 0, 1_099), "1 old and 2 recent pending, 1 099 finished");

        let purged = store.purge_old_webhooks(now - 90 * 86_400_000).await.unwrap();
        assert_eq!((purged.receipts, purged.events), (1_100, 1_099), "every old receipt, every finished old event");
        assert_eq!(store.event_counts().await.unwrap(), (3, 0, 0), "the pending old event stays");
        assert_eq!(store.recent_receipts(10).await.unwrap().len(), 2, "recent receipts stay");
        let again = store.purge_old_webhooks(now - 90 * 86_400_000).await.unwrap();
        assert_eq!((again.receipts, again.events), (0, 0));
    })
    .await;
}
