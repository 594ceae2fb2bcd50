//! `dropcheck demo`: a demo project with drops in every status, each with generated photos,
//! so a new user sees a living dashboard. Goes through the same store operations as real
//! traffic, so every drop's history and counters are true. Running it twice adds nothing.

use crate::domain::{DropNumber, DropStatus, Phone, StepNo, Verdict};
use crate::error::{CoreError, CoreResult};
use crate::media::{demo_photo, MediaStore};
use crate::now_ms;
use crate::store::{ActorRef, NewPhoto, StepVerdict, Store};

pub const DEMO_PROJECT: &str = "Velo Test";

const CONTRACTORS: [(&str, &str); 5] = [
    ("+27640412391", "Sipho Ndlovu"),
    ("+27821234567", "Thandi Mokoena"),
    ("+27719876543", "Johan van Wyk"),
    ("+27835550199", "Aisha Patel"),
    ("+27605551234", "Pieter Botha"),
];

#[derive(Debug, Default)]
pub struct DemoReport {
    pub created: usize,
    pub skipped: usize,
    pub photos: usize,
}

/// The plan: how many drops end in each status (64 in all).
const PLAN: [(DropStatus, usize); 5] = [
    (DropStatus::Collecting, 10),
    (DropStatus::Unreviewed, 20),
    (DropStatus::Incomplete, 12),
    (DropStatus::Resubmitted, 8),
    (DropStatus::Approved, 14),
];

pub async fn load(store: &Store, media: &MediaStore) -> CoreResult<DemoReport> {
    let project = match store.project_by_name(DEMO_PROJECT).await? {
        Some(p) => p,
        None => store.create_project(DEMO_PROJECT, crate::domain::DEFAULT_DROP_PATTERN).await?,
    };
    let checklist = store.checklist(project.project_id).await?;
    let actor = ActorRef::system("demo");
    let mut report = DemoReport::default();
    let mut i = 0usize;
    for (target, count) in PLAN {
        for _ in 0..count {
            i += 1;
            let number = DropNumber::parse(&format!("DR{:08}", 10_000_000 + i * 7919 % 9_000_000))?;
            let (name_phone, name) = CONTRACTORS[i % CONTRACTORS.len()];
            let phone = Phone::parse(name_phone)?;
            store.upsert_contact(&phone, name).await?;
            let (_, created) = store.create_drop(&project, &number, Some(&phone), DropStatus::Collecting, &actor).await?;
            if !created {
                report.skipped += 1;
                continue;
            }
            report.created += 1;
            let contractor = ActorRef::system(format!("contractor {name_phone}"));
            // Collecting drops have only some photos so far.
            let shots = if target == DropStatus::Collecting { 2 + i % 8 } else { checklist.len() };
            let steps = checklist.iter().take(shots).map(|s| (s.step_no, s.name.clone())).collect();
            report.photos += add_photos(store, media, &number, steps, 0, &contractor).await?;
            if target == DropStatus::Collecting {
                continue;
            }
            store.complete(&number, &contractor).await?;
            let reviewer = ActorRef::system("demo reviewer");
            match target {
                DropStatus::Approved => store.approve(&number, true, &reviewer).await?,
                DropStatus::Incomplete | DropStatus::Resubmitted => {
                    let bad = [(3 + i % 5) as i64, (7 + i % 4) as i64];
                    let verdicts: Vec<StepVerdict> = checklist
                        .iter()
                        .map(|s| {
                            let (verdict, reason, note) = if s.step_no == bad[0] {
                                (Verdict::Retake, Some("blurry"), "Photo is blurred; hold the phone steady.")
                            } else if s.step_no == bad[1] {
                                (Verdict::Missing, Some("no_photo"), "")
                            } else {
                                (Verdict::Ok, None, "")
                            };
                            StepVerdict {
                                step: StepNo::new(s.step_no).expect("checklist steps are valid"),
                                verdict,
                                reason: reason.map(String::from),
                                note: note.into(),
                            }
                        })
                        .collect();
                    store.set_verdicts(&number, &verdicts, &reviewer).await?;
                    store.mark_incomplete(&number, &reviewer).await?;
                    if target == DropStatus::Resubmitted {
                        let steps = bad.iter().map(|&step| (step, checklist[(step - 1) as usize].name.clone())).collect();
                        report.photos += add_photos(store, media, &number, steps, 1, &contractor).await?;
                        store.resubmit(&number, &contractor).await?;
                    }
                }
                _ => {}
            }
        }
    }
    Ok(report)
}

/// Generates and files a drop's photos, the generating and measuring spread over the cores
/// (a 1280×960 photo takes about 0.1 s to draw, encode, measure and thumbnail); filed in step
/// order. Returns how many.
async fn add_photos(
    store: &Store,
    media: &MediaStore,
    number: &DropNumber,
    steps: Vec<(i64, String)>,
    variant: u32,
    actor: &ActorRef,
) -> CoreResult<usize> {
    use futures_util::StreamExt;
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut made = futures_util::stream::iter(steps.into_iter().map(|(step, name)| {
        let (media, number) = (media.clone(), number.to_string());
        async move {
            let bytes = tokio::task::spawn_blocking(move || demo_photo(&number, step, &name, variant))
                .await
                .map_err(|e| CoreError::Internal(e.to_string()))?;
            let stored = media.store_image(bytes).await?;
            media.thumbnail(&stored.sha256).await?;
            Ok::<_, CoreError>((step, stored))
        }
    }))
    .buffered(cores);
    let mut n = 0;
    while let Some(made) = made.next().await {
        let (step, stored) = made?;
        let photo = NewPhoto::from_stored(StepNo::new(step)?, &stored, None, now_ms());
        store.add_photo(number, &photo, actor).await?;
        n += 1;
    }
    Ok(n)
}
