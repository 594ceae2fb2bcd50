//! The storage contract: every scenario runs on SQLite and on PostgreSQL (see
//! `dropcheck_core::testing`), so both backends are held to the same behaviour.

use dropcheck_core::domain::{DropNumber, DropStatus, Email, Phone, Role, StepNo, Verdict, DEFAULT_DROP_PATTERN};
use dropcheck_core::ids::{MessageId, PhotoId, ProjectId};
use dropcheck_core::outbox::SendOutcome;
use dropcheck_core::providers::DeliveryStatus;
use dropcheck_core::store::{ActorRef, Cursor, DropFilter, NewPhoto, StepVerdict, Store};
use dropcheck_core::testing::on_each_backend;
use dropcheck_core::{now_ms, CoreError};

fn dn(s: &str) -> DropNumber {
    DropNumber::parse(s).unwrap()
}

fn verdict(step: i64, v: Verdict, reason: Option<&str>, note: &str) -> StepVerdict {
    StepVerdict { step: StepNo::new(step).unwrap(), verdict: v, reason: reason.map(String::from), note: note.into() }
}

fn photo(step: i64, sha_seed: u8) -> NewPhoto {
    NewPhoto {
        step: StepNo::new(step).unwrap(),
        sha256: format!("{:02x}", sha_seed).repeat(32),
        mime_type: "image/jpeg".into(),
        size_bytes: 1000,
        width: 640,
        height: 480,
        provider_media_id: None,
        received_at: now_ms(),
        measures: None,
        pdq: None,
        phash: None,
        similar: Default::default(),
        vision: false,
    }
}

async fn counts(store: &Store) -> Vec<(DropStatus, i64)> {
    store.status_counts().await.unwrap().into_iter().filter(|(_, n)| *n != 0).collect()
}

#[tokio::test]
async fn a_drop_goes_through_the_whole_review_loop_with_history_and_outbox() {
    on_each_backend(|store| async move {
        // Arrange
        let project = store.create_project("Velo Test", DEFAULT_DROP_PATTERN).await.unwrap();
        assert_eq!(store.checklist(project.project_id).await.unwrap().len(), 12);
        let phone = Phone::parse("+27640412391").unwrap();
        let api = ActorRef::system("api key ci");
        let reviewer = ActorRef::system("ann@example.com");

        // Created once; a repeat reports it exists.
        let (d, created) = store.create_drop(&project, &dn("dr12345678"), Some(&phone), DropStatus::Collecting, &api).await.unwrap();
        assert!(created);
        assert_eq!(d.drop_number, "DR12345678");
        let (_, created) = store.create_drop(&project, &dn("DR12345678"), Some(&phone), DropStatus::Unreviewed, &api).await.unwrap();
        assert!(!created);
        let err = store.create_drop(&project, &dn("XX1"), Some(&phone), DropStatus::Unreviewed, &api).await.unwrap_err();
        assert_eq!(err.code(), "invalid_drop_number");

        for step in 1..=12 {
            store.add_photo(&dn("DR12345678"), &photo(step, step as u8), &api).await.unwrap();
        }
        assert_eq!(store.add_photo(&dn("DR12345678"), &photo(13, 1), &api).await.unwrap_err().code(), "invalid_step");
        // Each photo filed is a `drop.photo_added` event (webhook endpoints can take it).
        let added: Vec<serde_json::Value> =
            store.events_of("DR12345678", 50).await.unwrap().into_iter().filter(|e| e.0 == "drop.photo_added").map(|e| e.1).collect();
        assert_eq!(added.len(), 12, "the refused 13th is none");
        assert_eq!((added[0]["step"].as_i64(), added[0]["drop_number"].as_str()), (Some(12), Some("DR12345678")));

        // Reviewing a collecting drop's status is refused with a typed conflict.
        let err = store.approve(&dn("DR12345678"), true, &reviewer).await.unwrap_err();
        assert_eq!(err.code(), "invalid_transition");
        store.complete(&dn("DR12345678"), &api).await.unwrap();
        assert_eq!(counts(&store).await, vec![(DropStatus::Unreviewed, 1)]);

        // Nothing rejected yet: marking incomplete has nothing to say.
        assert_eq!(store.mark_incomplete(&dn("DR12345678"), &reviewer).await.unwrap_err().code(), "nothing_to_fix");

        store
            .set_verdicts(
                &dn("DR12345678"),
                &[
                    verdict(3, Verdict::Missing, Some("no_photo"), ""),
                    verdict(7, Verdict::Retake, Some("blurry"), "Reading not visible"),
                    verdict(1, Verdict::Ok, None, ""),
                ],
                &reviewer,
            )
            .await
            .unwrap();
        assert_eq!(
            store.set_verdicts(&dn("DR12345678"), &[verdict(2, Verdict::Missing, Some("nope"), "")], &reviewer).await.unwrap_err().code(),
            "invalid_reason"
        );

        // Approving with rejected steps is refused.
        assert_eq!(store.approve(&dn("DR12345678"), true, &reviewer).await.unwrap_err().code(), "steps_rejected");

        let detail = store.drop_detail(&dn("DR12345678")).await.unwrap();
        let reasons = store.reasons().await.unwrap();
        let (preview, _) = store.feedback_message(&detail, &reasons).await.unwrap();
        let body = store.mark_incomplete(&dn("DR12345678"), &reviewer).await.unwrap();
        assert_eq!(body, preview, "the queued text is exactly the preview");
        assert!(body.contains("Step 3 – Cable entry outside: photo missing (No photo received)"), "{body}");
        assert!(
            body.contains("Step 7 – Power meter reading: photo unusable, please retake (Blurred or out of focus). Reading not visible"),
            "{body}"
        );
        assert!(body.ends_with("Once uploaded, send: DR12345678 DONE"), "{body}");
        let lines: Vec<&str> = body.lines().collect();
        assert_eq!(lines.iter().filter(|l| l.starts_with("• Step ")).count(), 2, "one line per step: {body}");
        assert!(lines[0].starts_with("Hi there, drop DR12345678 (Velo Test) needs attention:"), "{body}");
        assert!(!body.contains("Step 1 "), "accepted steps are not in the feedback: {body}");

        let detail = store.drop_detail(&dn("DR12345678")).await.unwrap();
        assert_eq!(detail.status, DropStatus::Incomplete);
        assert!(detail.incomplete_at.is_some());
        assert_eq!(detail.messages.len(), 1);
        assert_eq!(detail.messages[0].status, "queued");
        assert_eq!(detail.messages[0].phone, "+27640412391");
        assert_eq!(detail.messages[0].template.as_deref(), Some("drop_feedback"));
        assert_eq!(counts(&store).await, vec![(DropStatus::Incomplete, 1)]);

        // The feedback goes out, recorded in one group with another send: each message gets
        // its own provider id and way of sending, and the drop says when its feedback left.
        let feedback = detail.messages[0].message_id;
        let other = store.queue_message(&Phone::parse("+27640000009").unwrap(), "hello", None, now_ms()).await.unwrap();
        let sent = |message_id: MessageId, provider_id: &str, sent_as: &str, at: i64| SendOutcome::Sent {
            message_id,
            provider_id: provider_id.into(),
            status: DeliveryStatus::Sent,
            sent_as: sent_as.into(),
            at,
        };
        store.record_outcomes(&[sent(other, "SMother", "text", 1_111), sent(feedback, "SMfeedback", "template:x", 2_222)]).await.unwrap();
        let detail = store.drop_detail(&dn("DR12345678")).await.unwrap();
        assert_eq!(detail.feedback_sent_at, Some(2_222));
        let m = &detail.messages[0];
        assert_eq!(
            (m.status.as_str(), m.provider_message_id.as_deref(), m.sent_as.as_deref()),
            ("sent", Some("SMfeedback"), Some("template:x"))
        );
        let o = store.message(other).await.unwrap();
        assert_eq!((o.status.as_str(), o.provider_message_id.as_deref(), o.sent_as.as_deref()), ("sent", Some("SMother"), Some("text")));

        // Resubmission: round 2, rejected steps reopen with their previous verdict kept.
        store.add_photo(&dn("DR12345678"), &photo(3, 100), &api).await.unwrap();
        store.resubmit(&dn("DR12345678"), &api).await.unwrap();
        let detail = store.drop_detail(&dn("DR12345678")).await.unwrap();
        assert_eq!((detail.status, detail.round), (DropStatus::Resubmitted, 2));
        assert!(detail.feedback_sent_at.is_none());
        let s3 = &detail.steps[2];
        assert_eq!((s3.verdict, s3.previous_verdict), (Verdict::Pending, Some(Verdict::Missing)));
        assert_eq!(s3.photos.len(), 2, "no photo is deleted by a resubmission");
        assert_eq!((s3.photos[0].round, s3.photos[1].round), (2, 1), "the fix belongs to round 2, the original to round 1");
        assert_eq!(detail.steps[6].previous_note.as_deref(), Some("Reading not visible"));
        assert_eq!(detail.steps[0].verdict, Verdict::Ok, "accepted steps stay accepted");
        assert_eq!(detail.steps[0].previous_verdict, None);

        // A second resubmit is not a valid transition.
        assert_eq!(store.resubmit(&dn("DR12345678"), &api).await.unwrap_err().code(), "invalid_transition");

        // Approve (not "all") refuses pending steps; approve all accepts them.
        assert_eq!(store.approve(&dn("DR12345678"), false, &reviewer).await.unwrap_err().code(), "steps_pending");
        store.approve(&dn("DR12345678"), true, &reviewer).await.unwrap();
        let detail = store.drop_detail(&dn("DR12345678")).await.unwrap();
        assert_eq!(detail.status, DropStatus::Approved);
        assert!(detail.steps.iter().all(|s| s.verdict == Verdict::Ok));
        assert_eq!(counts(&store).await, vec![(DropStatus::Approved, 1)]);

        // Approved drops are locked for reviewers.
        assert_eq!(
            store.set_verdicts(&dn("DR12345678"), &[verdict(2, Verdict::Missing, None, "")], &reviewer).await.unwrap_err().code(),
            "drop_approved"
        );
        assert!(matches!(store.mark_incomplete(&dn("DR12345678"), &reviewer).await, Err(CoreError::Forbidden(_))));

        let kinds: Vec<String> = detail.history.iter().map(|h| h.kind.clone()).collect();
        assert_eq!(kinds.iter().filter(|k| *k == "status").count(), 4, "{kinds:?}");
        assert!(detail.history.iter().any(|h| h.actor == "ann@example.com" && h.detail.contains("step 7 → retake")));
    })
    .await;
}

#[tokio::test]
async fn drops_list_is_keyset_paginated_and_filtered() {
    on_each_backend(|store| async move {
        let project = store.create_project("Velo Test", DEFAULT_DROP_PATTERN).await.unwrap();
        let other = store.create_project("Other", "^OT[0-9]{4}$").await.unwrap();
        let api = ActorRef::system("api");
        let a = Phone::parse("+27640412391").unwrap();
        let b = Phone::parse("+27821234567").unwrap();
        store.upsert_contact(&b, "Thandi Mokoena").await.unwrap();
        for i in 0..25 {
            let phone = if i % 2 == 0 { &a } else { &b };
            store.create_drop(&project, &dn(&format!("DR{:08}", i)), Some(phone), DropStatus::Unreviewed, &api).await.unwrap();
        }
        store.create_drop(&other, &dn("OT0001"), Some(&a), DropStatus::Collecting, &api).await.unwrap();

        // Pages of 10 cover everything once, newest first.
        let mut seen = vec![];
        let mut cursor: Option<Cursor> = None;
        loop {
            let (rows, next) = store.list_drops(&DropFilter::default(), cursor, 10).await.unwrap();
            seen.extend(rows.iter().map(|r| r.drop_number.clone()));
            match next {
                Some(c) => cursor = Some(Cursor::parse(&c.encode()).unwrap()),
                None => break,
            }
        }
        assert_eq!(seen.len(), 26);
        let mut dedup = seen.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(dedup.len(), 26);
        assert_eq!(seen[0], "OT0001", "newest activity first");

        let f = DropFilter { status: Some(DropStatus::Collecting), ..Default::default() };
        assert_eq!(store.list_drops(&f, None, 50).await.unwrap().0.len(), 1);
        let f = DropFilter { project_id: Some(project.project_id), ..Default::default() };
        assert_eq!(store.list_drops(&f, None, 50).await.unwrap().0.len(), 25);
        let f = DropFilter { contractor: Some("thandi".into()), ..Default::default() };
        assert_eq!(store.list_drops(&f, None, 50).await.unwrap().0.len(), 12);
        let f = DropFilter { q: Some("dr0000001".into()), ..Default::default() };
        assert_eq!(store.list_drops(&f, None, 50).await.unwrap().0.len(), 10, "DR00000010..19");
        let f = DropFilter { q: Some("%".into()), ..Default::default() };
        assert_eq!(store.list_drops(&f, None, 50).await.unwrap().0.len(), 0, "LIKE wildcards are escaped");
        let f = DropFilter { from_ms: Some(now_ms() + 60_000), ..Default::default() };
        assert_eq!(store.list_drops(&f, None, 50).await.unwrap().0.len(), 0);
        assert!(Cursor::parse("nonsense").is_err());

        let counts = store.status_counts().await.unwrap();
        assert_eq!(counts.iter().find(|(s, _)| *s == DropStatus::Unreviewed).unwrap().1, 25);
        assert_eq!(store.next_for_review(None).await.unwrap(), Some(dn("DR00000000")));
        assert_eq!(store.next_for_review(Some(&dn("DR00000000"))).await.unwrap(), Some(dn("DR00000001")));
    })
    .await;
}

#[tokio::test]
async fn photos_move_between_steps_and_history_records_it() {
    on_each_backend(|store| async move {
        let project = store.create_project("Velo Test", DEFAULT_DROP_PATTERN).await.unwrap();
        let api = ActorRef::system("api");
        store.create_drop(&project, &dn("DR00000001"), None, DropStatus::Unreviewed, &api).await.unwrap();
        let id = store.add_photo(&dn("DR00000001"), &photo(2, 7), &api).await.unwrap();
        store.add_photo(&dn("DR00000001"), &photo(5, 8), &api).await.unwrap();
        let s = store.drop_summary(&dn("DR00000001")).await.unwrap();
        assert_eq!((s.photo_steps, s.step_count), (2, 12), "photos on steps 2 and 5 of 12");
        store.move_photo(&dn("DR00000001"), id, StepNo::new(5).unwrap(), &api).await.unwrap();
        let s = store.drop_summary(&dn("DR00000001")).await.unwrap();
        assert_eq!(s.photo_steps, 1, "both photos are now on step 5");
        let d = store.drop_detail(&dn("DR00000001")).await.unwrap();
        assert!(d.steps[1].photos.is_empty());
        assert!(d.steps[4].photos.iter().any(|p| p.photo_id == id));
        assert!(d.history.iter().any(|h| h.detail == "photo moved from step 2 to step 5"));
        assert_eq!(
            store.move_photo(&dn("DR00000001"), PhotoId(id.get() + 99), StepNo::new(1).unwrap(), &api).await.unwrap_err().code(),
            "photo_not_found"
        );
        // Without a contractor there is nobody to send feedback to.
        store.set_verdicts(&dn("DR00000001"), &[verdict(1, Verdict::Missing, None, "")], &api).await.unwrap();
        assert_eq!(store.mark_incomplete(&dn("DR00000001"), &api).await.unwrap_err().code(), "no_contractor");
        assert_eq!(store.drop_detail(&dn("DR00000404")).await.unwrap_err().code(), "drop_not_found");
    })
    .await;
}

#[tokio::test]
async fn users_sessions_login_throttles_and_api_keys_persist() {
    on_each_backend(|store| async move {
        let ann = Email::parse("ann@example.com").unwrap();
        let bob = Email::parse("bob@example.com").unwrap();
        assert_eq!(store.user_count().await.unwrap(), 0);
        let admin = store.create_first_admin(&ann, "hash-a").await.unwrap();
        assert_eq!(admin.role(), Role::Admin);
        assert_eq!(store.create_first_admin(&bob, "hash-b").await.unwrap_err().code(), "setup_done");
        let rev = store.create_user(&bob, "hash-b", Role::Reviewer).await.unwrap();
        assert_eq!(store.create_user(&bob, "x", Role::Admin).await.unwrap_err().code(), "email_taken");
        assert_eq!(store.user_by_email(&bob).await.unwrap().unwrap().user_id, rev.user_id);
        assert_eq!(store.set_role(admin.user_id, Role::Reviewer).await.unwrap_err().code(), "last_admin");
        assert_eq!(store.delete_user(admin.user_id).await.unwrap_err().code(), "last_admin");
        store.set_role(rev.user_id, Role::Admin).await.unwrap();
        store.delete_user(admin.user_id).await.unwrap();
        assert_eq!(store.users().await.unwrap().len(), 1);

        let now = now_ms();
        assert!(store.session_create("s1", b"data", now + 1000).await.unwrap());
        assert!(!store.session_create("s1", b"other", now + 1000).await.unwrap());
        assert_eq!(store.session_load("s1", now).await.unwrap().as_deref(), Some(&b"data"[..]));
        store.session_save("s1", b"new", now + 1000).await.unwrap();
        assert_eq!(store.session_load("s1", now).await.unwrap().as_deref(), Some(&b"new"[..]));
        assert_eq!(store.session_load("s1", now + 2000).await.unwrap(), None, "expired sessions are not loaded");
        store.session_delete("s1").await.unwrap();
        assert_eq!(store.session_load("s1", now).await.unwrap(), None);

        // Sign-in throttling: 3 attempts a minute; the 4th is refused until the window ends;
        // failing the 3rd locks the key (1 s, then doubled up to the 1.5 s cap); a success
        // clears it; other keys are not affected.
        let k = "acct:bob@example.com 10.0.0.1";
        for _ in 0..3 {
            assert_eq!(store.claim_login_attempt(k, 3, 60_000, now).await.unwrap(), None);
        }
        assert_eq!(store.claim_login_attempt(k, 3, 60_000, now).await.unwrap(), Some(now + 60_000));
        store.fail_login_attempt(k, 3, 1000, 1500, now).await.unwrap();
        assert_eq!(store.claim_login_attempt(k, 3, 60_000, now + 10).await.unwrap(), Some(now + 1000), "locked for 1 s");
        assert_eq!(store.claim_login_attempt(k, 3, 60_000, now + 1000).await.unwrap(), None, "the lock is over");
        store.release_login_attempt(k).await.unwrap();
        for _ in 0..3 {
            assert_eq!(store.claim_login_attempt(k, 3, 60_000, now + 1000).await.unwrap(), None);
        }
        store.fail_login_attempt(k, 3, 1000, 1500, now + 1000).await.unwrap();
        assert_eq!(store.claim_login_attempt(k, 3, 60_000, now + 1010).await.unwrap(), Some(now + 2500), "doubled, capped");
        assert_eq!(store.claim_login_attempt("addr:10.0.0.2", 3, 60_000, now).await.unwrap(), None);
        store.clear_login_throttle(k).await.unwrap();
        assert_eq!(store.claim_login_attempt(k, 3, 60_000, now + 1010).await.unwrap(), None);

        let id = store.create_api_key("ci", "dc_abcdef", "hash1", "submit read").await.unwrap();
        assert_eq!(store.api_key_by_hash("hash1").await.unwrap().unwrap().name, "ci");
        store.revoke_api_key(id).await.unwrap();
        assert!(store.api_key_by_hash("hash1").await.unwrap().unwrap().revoked_at.is_some());
        assert!(store.api_key_by_hash("nope").await.unwrap().is_none());
    })
    .await;
}

#[tokio::test]
async fn project_checklists_are_editable_and_validated() {
    on_each_backend(|store| async move {
        let p = store.create_project("Velo Test", DEFAULT_DROP_PATTERN).await.unwrap();
        assert_eq!(store.create_project("velo test", DEFAULT_DROP_PATTERN).await.unwrap_err().code(), "project_exists");
        assert_eq!(store.create_project("Bad", "([").await.unwrap_err().code(), "invalid_pattern");
        let steps = vec![("Front".to_string(), "house".to_string()), ("Meter".to_string(), String::new())];
        store.update_project(p.project_id, "^DR[0-9]{6}$", &steps).await.unwrap();
        let api = ActorRef::system("api");
        let edited = store.project(p.project_id).await.unwrap();
        let (s, _) = store.create_drop(&edited, &dn("DR123456"), None, DropStatus::Unreviewed, &api).await.unwrap();
        assert_eq!(s.step_count, 2, "the list shows the edited checklist's length");
        let cl = store.checklist(p.project_id).await.unwrap();
        assert_eq!(cl.iter().map(|s| (s.step_no, s.name.as_str())).collect::<Vec<_>>(), vec![(1, "Front"), (2, "Meter")]);
        assert_eq!(store.update_project(p.project_id, "^x$", &[]).await.unwrap_err().code(), "invalid_checklist");
        assert_eq!(store.update_project(ProjectId(p.project_id.get() + 50), "^x$", &steps).await.unwrap_err().code(), "project_not_found");
        let p = store.project_by_name("VELO TEST").await.unwrap().unwrap();
        assert!(p.check_drop_number(&dn("DR123456")).is_ok());
        assert!(p.check_drop_number(&dn("DR12345678")).is_err());
    })
    .await;
}

#[tokio::test]
async fn a_database_refusal_of_the_data_is_deterministic() {
    on_each_backend(|store| async move {
        // PostgreSQL refuses a NUL in text (SQLSTATE 22021) every time it is asked: a retry
        // cannot help, so the inbox fails such an event at once. SQLite stores it.
        match store.create_project("Velo\0Test", DEFAULT_DROP_PATTERN).await {
            Ok(_) => assert_eq!(store.backend(), "sqlite"),
            Err(e) => {
                assert_eq!(store.backend(), "postgresql", "{e:?}");
                assert!(e.is_deterministic(), "{e:?}");
                assert!(e.is_internal());
            }
        }
        // Searches longer than any drop number or name are refused before the database.
        let long = "D".repeat(dropcheck_core::store::MAX_SEARCH_CHARS + 1);
        let f = DropFilter { q: Some(long), ..Default::default() };
        assert!(matches!(store.list_drops(&f, None, 10).await, Err(CoreError::Input(e)) if e.code == "search_too_long"));
        assert!(!CoreError::Internal("lost the connection".into()).is_deterministic());
    })
    .await;
}

#[tokio::test]
async fn a_corrupt_stored_phone_or_drop_number_is_an_error_naming_its_row_never_a_default() {
    on_each_backend(|store| async move {
        let project = store.create_project("Velo Test", DEFAULT_DROP_PATTERN).await.unwrap();
        let phone = Phone::parse("+27640412391").unwrap();
        let api = ActorRef::system("api key ci");
        let (d, _) = store.create_drop(&project, &dn("DR12345678"), Some(&phone), DropStatus::Unreviewed, &api).await.unwrap();
        let (other, _) = store.create_drop(&project, &dn("DR12345679"), None, DropStatus::Unreviewed, &api).await.unwrap();
        // Read back typed: the number and the phone are the parsed values.
        let detail = store.drop_detail(&dn("DR12345678")).await.unwrap();
        assert_eq!(detail.contractor.as_ref().map(|c| &c.phone), Some(&phone));

        // A phone no parser accepts, written behind the store's back.
        dropcheck_core::testing::execute_raw(&store, "update contact set phone = 'not a phone' where phone = '+27640412391'").await;
        let err = store.list_drops(&DropFilter::default(), None, 50).await.unwrap_err();
        let text = format!("{err:?}");
        assert!(err.is_internal(), "{text}");
        assert!(text.contains("contractor_phone") && text.contains(&format!("drop_job row drop_id {}", d.drop_id)), "{text}");
        assert!(text.contains("stored Phone") && text.contains("is not an E.164 number"), "{text}");
        // The same row read alone says the same; the other drop still reads.
        let err = format!("{:?}", store.drop_detail(&dn("DR12345678")).await.unwrap_err());
        assert!(err.contains(&format!("drop_job row drop_id {}", d.drop_id)), "{err}");
        assert_eq!(store.drop_detail(&dn("DR12345679")).await.unwrap().drop_id, other.drop_id);

        // A drop number that is no drop number.
        dropcheck_core::testing::execute_raw(&store, &format!("update drop_job set drop_number = 'x y' where drop_id = {}", other.drop_id))
            .await;
        let err = format!("{:?}", store.next_for_review(Some(&dn("DR12345678"))).await.unwrap_err());
        assert!(err.contains("stored DropNumber") && err.contains("'x y' is not a drop number"), "{err}");
    })
    .await;
}
