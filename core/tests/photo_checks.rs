//! Usable-photo checks through the inbox on both backends (issue 13, item 1): a photo too
//! dark is filed and flagged with its measured value, the burst's acknowledgment asks for
//! that step again, the drops list finds the drop by its open flag, and the flag closes
//! when a reviewer dismisses it or a new photo replaces the photo; a project's thresholds
//! and screenshot steps change what is judged.

use dropcheck_core::domain::{CheckKind, CheckResult, Direction, DropNumber, DropStatus, DEFAULT_DROP_PATTERN};
use dropcheck_core::media::{demo_photo, spoiled_photo, MediaStore, StoredMedia};
use dropcheck_core::outbox::MessageFilter;
use dropcheck_core::photo_checks::Thresholds;
use dropcheck_core::providers::{InboundMessage, MessageKind};
use dropcheck_core::store::{ActorRef, DropFilter, Store};
use dropcheck_core::testing::{cropped_photo, on_each_backend, scene_photo};

const PHONE: &str = "+27640412391";

fn message(id: &str, body: &str, kind: MessageKind) -> InboundMessage {
    InboundMessage { provider_id: id.into(), from: PHONE.into(), profile_name: "Sipho".into(), body: body.into(), kind, media: vec![] }
}

/// A phone-sized photo (1280×960), or the same darkened to a quarter.
async fn photo(media: &MediaStore, n: u32, dark: bool) -> StoredMedia {
    let jpeg = demo_photo("DR12345678", i64::from(n), "x", n);
    let jpeg = if dark { spoiled_photo(&jpeg, 4, 0.0).unwrap() } else { jpeg };
    media.store_image(jpeg).await.unwrap()
}

async fn send(store: &Store, id: &str, caption: &str, p: StoredMedia, now: i64) {
    store.handle_message(&message(id, caption, MessageKind::Media), &[Ok(p)], now).await.unwrap();
}

async fn last_ack(store: &Store) -> String {
    let f = MessageFilter { direction: Some(Direction::Out), ..Default::default() };
    let (rows, _) = store.list_messages(&f, None, 200).await.unwrap();
    rows.into_iter().map(|m| m.body).find(|b| b.starts_with("Got ")).expect("an acknowledgment")
}

async fn flagged(store: &Store) -> Vec<String> {
    let f = DropFilter { flagged: true, ..Default::default() };
    store.list_drops(&f, None, 50).await.unwrap().0.into_iter().map(|d| d.drop_number.to_string()).collect()
}

/// A project, a media directory, and DR12345678 opened by the contractor at the returned time.
async fn drop_opened(store: &Store) -> (tempfile::TempDir, MediaStore, i64) {
    store.create_project("Velo Test", DEFAULT_DROP_PATTERN).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let media = MediaStore::new(dir.path());
    let t = dropcheck_core::now_ms();
    store.handle_message(&message("SM0", "DR12345678", MessageKind::Text), &[], t).await.unwrap();
    (dir, media, t)
}

#[tokio::test]
async fn a_dark_photo_is_flagged_asked_again_and_closed_by_a_dismissal_or_a_new_photo() {
    on_each_backend(|store| async move {
        let (_dir, media, t) = drop_opened(&store).await;
        let dn = DropNumber::parse("DR12345678").unwrap();
        for n in 1..=3 {
            send(&store, &format!("MM{n}"), "", photo(&media, n, n >= 2).await, t + i64::from(n)).await;
        }

        // Filed, never lost; flagged with the measured value; the good one passes all four.
        let d = store.drop_detail(&dn).await.unwrap();
        assert!(d.steps.iter().take(3).all(|s| s.photos.len() == 1), "every photo is filed");
        let good = &d.steps[0].photos[0];
        let kinds: Vec<&str> = good.checks.iter().map(|c| c.kind.as_str()).collect();
        assert_eq!(kinds, ["blurred", "dark", "featureless", "overexposed", "reused", "small"], "{:?}", good.checks);
        assert!(good.checks.iter().all(|c| c.result == CheckResult::Pass), "{:?}", good.checks);
        let dark = d.steps[1].photos[0].checks.iter().find(|c| c.kind == CheckKind::Dark).unwrap();
        assert_eq!(dark.result, CheckResult::Flag);
        assert!(dark.value < Thresholds::default().dark_flag, "{dark:?}");
        assert!(dark.detail.contains("brightness"), "{}", dark.detail);

        // The acknowledgment asks for steps 2 and 3 again, saying why and how.
        let ack = last_ack(&store).await;
        assert!(ack.contains("Step 2: the photo is too dark — switch on the light"), "{ack}");
        assert!(ack.contains("send it again with the caption \"2\".\nStep 3: the photo is too dark"), "one line per step: {ack}");
        assert!(ack.contains("with the caption \"3\".\nNext: step 4"), "{ack}");

        // The list's filter and count.
        assert_eq!(flagged(&store).await, vec!["DR12345678"]);
        assert_eq!(store.drop_summary(&dn).await.unwrap().open_flags, 2);

        // A reviewer dismisses step 3's flag: recorded, and once only.
        let step3 = d.steps[2].photos[0].photo_id;
        let qa = ActorRef::system("ann@example.com");
        store.dismiss_check(&dn, step3, CheckKind::Dark, &qa).await.unwrap();
        store.dismiss_check(&dn, step3, CheckKind::Dark, &qa).await.unwrap();
        let d = store.drop_detail(&dn).await.unwrap();
        let c = d.steps[2].photos[0].checks.iter().find(|c| c.kind == CheckKind::Dark).unwrap();
        assert_eq!(c.resolved_by.as_deref(), Some("ann@example.com"));
        assert_eq!(d.history.iter().filter(|h| h.kind == "check").count(), 1, "{:?}", d.history);
        assert_eq!(store.drop_summary(&dn).await.unwrap().open_flags, 1);
        let err = store.dismiss_check(&DropNumber::parse("DR99999999").unwrap(), step3, CheckKind::Dark, &qa).await.unwrap_err();
        assert_eq!(err.code(), "photo_not_found", "a photo of another drop");

        // The rest of the steps; then a photo without a caption goes to the flagged step and
        // closes its flag.
        for n in 4..=12 {
            send(&store, &format!("MM{n}"), "", photo(&media, n, false).await, t + i64::from(n)).await;
        }
        assert_eq!(store.drop_summary(&dn).await.unwrap().status, DropStatus::Unreviewed);
        send(&store, "MM13", "", photo(&media, 13, false).await, t + 20).await;
        let d = store.drop_detail(&dn).await.unwrap();
        assert_eq!(d.steps[1].photos.len(), 2, "the retake is on step 2");
        assert!(d.steps[1].photos[1].checks.iter().any(|c| c.resolved_by.as_deref() == Some("a new photo")));
        assert!(flagged(&store).await.is_empty());
        assert!(!last_ack(&store).await.contains("again with the caption"));

        // /stats: flags per step and per contractor, dismissed or replaced ones included.
        let st = store.stats(14, dropcheck_core::now_ms()).await.unwrap();
        assert_eq!((st.photos_checked, st.photos_flagged), (13, 2));
        assert_eq!(st.flags_by_step, vec![(2, 1), (3, 1)]);
        assert_eq!(st.flags_by_contractor, vec![("Sipho".to_string(), PHONE.to_string(), 2)]);
    })
    .await;
}

/// A dark scene with lit parts (a cabinet lit by the flash at night) is warned, not sent back:
/// the brightest 1 % is measured and stored with the photo, and read back when it is judged.
#[tokio::test]
async fn a_night_photo_with_a_lit_subject_is_warned_not_sent_back() {
    on_each_backend(|store| async move {
        let (_dir, media, t) = drop_opened(&store).await;
        let mut night = image::RgbImage::from_pixel(1600, 1200, image::Rgb([6, 6, 8]));
        for (x, y, p) in night.enumerate_pixels_mut() {
            if (500..1100).contains(&x) && (350..850).contains(&y) {
                let v = if (x / 5 + y / 7) % 2 == 0 { 235 } else { 140 };
                *p = image::Rgb([v, v, v.saturating_sub(20)]);
            }
        }
        let mut jpeg = vec![];
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 85).encode_image(&night).unwrap();
        send(&store, "MM1", "", media.store_image(jpeg).await.unwrap(), t + 1).await;
        let d = store.drop_detail(&DropNumber::parse("DR12345678").unwrap()).await.unwrap();
        let dark = d.steps[0].photos[0].checks.iter().find(|c| c.kind == CheckKind::Dark).unwrap().clone();
        assert_eq!(dark.result, CheckResult::Warn, "{dark:?}");
        assert!(dark.value < Thresholds::default().dark_flag, "dark on average: {dark:?}");
        assert!(dark.detail.contains("its brightest 1 % at ") && dark.detail.contains("lit parts"), "{}", dark.detail);
        let checks = &d.steps[0].photos[0].checks;
        assert!(flagged(&store).await.is_empty(), "{checks:#?}");
        assert!(!last_ack(&store).await.contains("too dark"), "{}", last_ack(&store).await);
    })
    .await;
}

#[tokio::test]
async fn a_projects_thresholds_and_screenshot_steps_decide_what_is_flagged() {
    on_each_backend(|store| async move {
        let project = store.create_project("Velo Test", DEFAULT_DROP_PATTERN).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let media = MediaStore::new(dir.path());
        let dn = DropNumber::parse("DR12345678").unwrap();

        let defaults = store.photo_check_settings(project.project_id).await.unwrap();
        assert!(!defaults.overridden && defaults.screenshot_steps.is_empty());
        assert_eq!(defaults.thresholds, Thresholds::default());
        let lenient = Thresholds { dark_flag: 10.0, dark_warn: 15.0, ..Thresholds::default() };
        store.set_photo_check_settings(project.project_id, Some(&lenient), &[2]).await.unwrap();
        let s = store.photo_check_settings(project.project_id).await.unwrap();
        assert_eq!((s.thresholds, s.overridden, s.screenshot_steps), (lenient, true, vec![2]));
        let nonsense = Thresholds { dark_flag: 90.0, dark_warn: 20.0, ..Thresholds::default() };
        let err = store.set_photo_check_settings(project.project_id, Some(&nonsense), &[]).await.unwrap_err();
        assert_eq!(err.code(), "invalid_thresholds");
        assert_eq!(store.set_photo_check_settings(project.project_id, None, &[13]).await.unwrap_err().code(), "invalid_step");
        assert_eq!(store.photo_check_settings(project.project_id).await.unwrap().screenshot_steps, vec![2], "refused: unchanged");

        let t = dropcheck_core::now_ms();
        store.handle_message(&message("SM0", "DR12345678", MessageKind::Text), &[], t).await.unwrap();
        send(&store, "MM1", "", photo(&media, 1, true).await, t + 1).await;
        send(&store, "MM2", "", photo(&media, 2, true).await, t + 2).await;
        let d = store.drop_detail(&dn).await.unwrap();
        let step1 = &d.steps[0].photos[0].checks;
        assert_eq!(step1.iter().find(|c| c.kind == CheckKind::Dark).unwrap().result, CheckResult::Pass, "{step1:?}");
        let step2: Vec<CheckKind> = d.steps[1].photos[0].checks.iter().map(|c| c.kind).collect();
        assert_eq!(
            step2,
            vec![CheckKind::Featureless, CheckKind::Reused, CheckKind::Small],
            "a screenshot step: focus and exposure are not checked"
        );
        assert!(flagged(&store).await.is_empty());

        // Back to the defaults: the next dark photo is flagged.
        store.set_photo_check_settings(project.project_id, None, &[]).await.unwrap();
        send(&store, "MM3", "", photo(&media, 3, true).await, t + 3).await;
        assert_eq!(flagged(&store).await, vec!["DR12345678"]);
    })
    .await;
}

/// Issue 13, item 2: a photo already on another drop — the same file, or a smaller, recompressed
/// copy — is flagged "reused from DR… step N" with the original; the contractor is not told;
/// a photo of its own drop is no match.
#[tokio::test]
async fn a_photo_from_another_drop_is_flagged_as_reused_with_its_original() {
    on_each_backend(|store| async move {
        let (_dir, media, t) = drop_opened(&store).await;
        let first = demo_photo("DR12345678", 1, "x", 1);
        let second = demo_photo("DR12345678", 2, "x", 2);
        for (n, jpeg) in [(1, first.clone()), (2, second.clone())] {
            send(&store, &format!("MM{n}"), "", media.store_image(jpeg).await.unwrap(), t + n).await;
        }
        // Another drop, later: the same file on step 1, a smaller q40 copy of the second on step 2.
        store.handle_message(&message("SM1", "DR12345679", MessageKind::Text), &[], t + 10).await.unwrap();
        send(&store, "MM3", "", media.store_image(first).await.unwrap(), t + 11).await;
        let img = image::load_from_memory(&second).unwrap().resize(1200, 900, image::imageops::FilterType::Triangle);
        let mut copy = vec![];
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut copy, 40).encode_image(&img.to_rgb8()).unwrap();
        send(&store, "MM4", "", media.store_image(copy).await.unwrap(), t + 12).await;

        let original = store.drop_detail(&DropNumber::parse("DR12345678").unwrap()).await.unwrap();
        let reused = |s: usize| original.steps[s].photos[0].checks.iter().find(|c| c.kind == CheckKind::Reused).unwrap().clone();
        assert_eq!(reused(0).result, CheckResult::Pass, "the first photos are new");
        let d = store.drop_detail(&DropNumber::parse("DR12345679").unwrap()).await.unwrap();
        let check = |s: usize| d.steps[s].photos[0].checks.iter().find(|c| c.kind == CheckKind::Reused).unwrap().clone();
        let same = check(0);
        assert_eq!((same.result, same.value), (CheckResult::Flag, 0.0), "{same:?}");
        assert_eq!(same.match_photo_id, Some(original.steps[0].photos[0].photo_id));
        assert_eq!((same.match_drop.as_deref(), same.match_step), (Some("DR12345678"), Some(1)));
        assert!(same.detail.starts_with("reused from DR12345678 step 1 (received ") && same.detail.contains("Sipho"), "{}", same.detail);
        let near = check(1);
        assert_eq!(near.result, CheckResult::Flag, "{near:?}");
        assert!(near.value > 0.0 && near.value <= 31.0, "{near:?}");
        assert_eq!(near.match_photo_id, Some(original.steps[1].photos[0].photo_id));
        // The contractor is not asked; the reviewer's list finds the drop.
        assert!(!last_ack(&store).await.contains("again with the caption"), "{}", last_ack(&store).await);
        assert_eq!(flagged(&store).await, vec!["DR12345679"]);

        // A project that asks about reused photos: the acknowledgment asks for a new one.
        let project = store.projects().await.unwrap().remove(0);
        let ask = Thresholds { ask_about_reuse: true, ..Thresholds::default() };
        store.set_photo_check_settings(project.project_id, Some(&ask), &[]).await.unwrap();
        store.handle_message(&message("SM2", "DR12345680", MessageKind::Text), &[], t + 20).await.unwrap();
        send(&store, "MM5", "", media.store_image(demo_photo("DR12345678", 1, "x", 1)).await.unwrap(), t + 21).await;
        let ack = last_ack(&store).await;
        assert!(ack.contains("Step 1: the photo is one we already have — take a new photo on site"), "{ack}");
    })
    .await;
}

/// Issue 13, item 3: the vision check is a durable job. A worker that dies holding one (its
/// lease runs out) leaves it to the next claim; a late answer from the first worker after the
/// second recorded its own changes nothing; nothing is queued while no model is configured.
#[tokio::test]
async fn a_vision_job_left_by_a_dead_worker_is_claimed_again_and_answered_once() {
    use dropcheck_core::store::VisionOutcome;
    use dropcheck_core::vision::Answer;
    on_each_backend(|store| async move {
        let (_dir, media, t) = drop_opened(&store).await;
        send(&store, "MM1", "", photo(&media, 1, false).await, t + 1).await;
        assert_eq!(store.next_vision_due().await.unwrap(), None, "no model configured: no job");

        store.set_vision_checks(true);
        send(&store, "MM2", "", photo(&media, 2, false).await, t + 2).await;
        let now = dropcheck_core::now_ms();
        let first = store.claim_vision_jobs(now, 1_000, 10).await.unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!((first[0].attempts, first[0].question.number), (1, 2));
        assert!(store.claim_vision_jobs(now + 10, 1_000, 10).await.unwrap().is_empty(), "leased");
        // The worker died: after the lease another takes it.
        let second = store.claim_vision_jobs(now + 1_001, 1_000, 10).await.unwrap();
        assert_eq!((second.len(), second[0].attempts), (1, 2));
        let answer = |ok: bool| VisionOutcome::Answered {
            answer: Answer { shows_expected_subject: ok, legible: true, confidence: 0.9, problems: vec![], values: Default::default() },
            model: "m".into(),
            latency_ms: 1_200,
        };
        store.finish_vision(second[0].photo_id, &answer(true), now + 1_500).await.unwrap();
        store.finish_vision(first[0].photo_id, &answer(false), now + 1_600).await.unwrap();
        assert_eq!(store.next_vision_due().await.unwrap(), None);
        let d = store.drop_detail(&DropNumber::parse("DR12345678").unwrap()).await.unwrap();
        let vision: Vec<_> = d.steps[1].photos[0].checks.iter().filter(|c| c.kind == CheckKind::Vision).collect();
        assert_eq!(vision.len(), 1);
        assert_eq!((vision[0].result, vision[0].suggestion()), (CheckResult::Pass, Some("ok")), "the first answer recorded stays");
        assert!(vision[0].detail.ends_with("(confidence 0.90, m, 1.2 s)"), "{}", vision[0].detail);
        assert!(d.steps[0].photos[0].checks.iter().all(|c| c.kind != CheckKind::Vision), "filed before the model was set");
    })
    .await;
}

/// Issue 13, item 2's second tier: with hints on, a cropped copy of a photo of another drop
/// (which PDQ does not find) is marked "possibly reused" beside its original — a warning for
/// the reviewer, never a flag, never asked of the contractor, never on a screenshot step; with
/// hints off (the default) nothing of it is looked up.
#[tokio::test]
async fn a_cropped_copy_from_another_drop_is_hinted_as_possibly_reused_when_hints_are_on() {
    on_each_backend(|store| async move {
        store.set_reuse_hints(true).unwrap();
        let (_dir, media, t) = drop_opened(&store).await;
        let first = scene_photo(7);
        send(&store, "MM1", "", media.store_image(first.clone()).await.unwrap(), t + 1).await;
        let a = store.drop_detail(&DropNumber::parse("DR12345678").unwrap()).await.unwrap();

        store.handle_message(&message("SM1", "DR12345679", MessageKind::Text), &[], t + 10).await.unwrap();
        let stored = media.store_image(cropped_photo(&first, 70)).await.unwrap();
        let (pdq, phash) = (stored.pdq.unwrap(), stored.phash.unwrap());
        let original = image::load_from_memory(&first).unwrap();
        assert!(pdq.distance_any_turn(&dropcheck_core::pdq::pdq(&original).hash) > 31, "PDQ does not survive the crop");
        let near = phash.distance_any_turn(dropcheck_core::phash::phash(&original).hash);
        assert!(near <= dropcheck_core::phash::HINT_DISTANCE, "the crop's pHash is {near} bits off");
        send(&store, "MM2", "1", stored, t + 11).await;
        let d = store.drop_detail(&DropNumber::parse("DR12345679").unwrap()).await.unwrap();
        let checks = &d.steps[0].photos[0].checks;
        let hint = checks.iter().find(|c| c.kind == CheckKind::PossiblyReused).unwrap_or_else(|| panic!("{checks:#?}"));
        assert_eq!((hint.result, hint.value), (CheckResult::Warn, f64::from(near)), "{hint:?}");
        assert_eq!(hint.match_photo_id, Some(a.steps[0].photos[0].photo_id), "the original");
        assert_eq!((hint.match_drop.as_deref(), hint.match_step), (Some("DR12345678"), Some(1)));
        assert!(hint.detail.starts_with("possibly reused from DR12345678 step 1 (received "), "{}", hint.detail);
        assert!(hint.detail.ends_with("compare them)"), "{}", hint.detail);
        assert_eq!(checks.iter().find(|c| c.kind == CheckKind::Reused).map(|c| c.result), Some(CheckResult::Pass), "not a PDQ match");
        assert!(flagged(&store).await.is_empty(), "a hint is not a flag");
        assert!(!last_ack(&store).await.contains("again with the caption"), "{}", last_ack(&store).await);

        // Another scene is not like it; a crop of a photo of the same drop is no hint either.
        send(&store, "MM3", "2", media.store_image(scene_photo(8)).await.unwrap(), t + 12).await;
        send(&store, "MM4", "3", media.store_image(cropped_photo(&scene_photo(8), 70)).await.unwrap(), t + 13).await;
        let d = store.drop_detail(&DropNumber::parse("DR12345679").unwrap()).await.unwrap();
        for step in &d.steps[1..3] {
            assert!(step.photos[0].checks.iter().all(|c| c.kind != CheckKind::PossiblyReused), "{step:?}");
        }

        // A screenshot step gets no hint: screens of one app look alike.
        let project = store.projects().await.unwrap().remove(0);
        store.set_photo_check_settings(project.project_id, None, &[4]).await.unwrap();
        send(&store, "MM5", "4", media.store_image(cropped_photo(&first, 60)).await.unwrap(), t + 14).await;
        let d = store.drop_detail(&DropNumber::parse("DR12345679").unwrap()).await.unwrap();
        assert!(d.steps[3].photos[0].checks.iter().all(|c| c.kind != CheckKind::PossiblyReused), "{:?}", d.steps[3]);
    })
    .await;
    // Hints off (the default): the same crop on another drop gets no hint.
    on_each_backend(|store| async move {
        let (_dir, media, t) = drop_opened(&store).await;
        let first = scene_photo(7);
        send(&store, "MM1", "", media.store_image(first.clone()).await.unwrap(), t + 1).await;
        store.handle_message(&message("SM1", "DR12345679", MessageKind::Text), &[], t + 10).await.unwrap();
        send(&store, "MM3", "", media.store_image(cropped_photo(&first, 70)).await.unwrap(), t + 11).await;
        let d = store.drop_detail(&DropNumber::parse("DR12345679").unwrap()).await.unwrap();
        assert!(d.steps[0].photos[0].checks.iter().all(|c| c.kind != CheckKind::PossiblyReused));
    })
    .await;
}
