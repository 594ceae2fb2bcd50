//! Contractor scorecards (issue 15, item 1): per contractor, over the drops they started in a
//! period (optionally one project's), how many reached review, how many were approved and how
//! many of those in their first round, which steps the reviewers sent back, how long they took
//! from feedback to resubmission and from the first message to approval, and their photo flags.
//!
//! The rounds come from each drop's history (`drop_event`, kind `status`): every transition is
//! written there as "From → To…", a feedback as "… → Incomplete; feedback queued for steps
//! 3, 7" ([`FEEDBACK_STEPS`]), so a drop that went back and forth counts every round, not only
//! its latest timestamps.

use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

use crate::domain::DropStatus;
use crate::error::{CoreResult, InputError};
use crate::store::{on_db, Db, Store};

/// What follows the transition in a feedback's history entry, before the steps sent back.
pub const FEEDBACK_STEPS: &str = "; feedback queued for steps ";

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scorecard {
    pub phone: String,
    pub name: String,
    /// Drops started in the period that reached review.
    pub drops: i64,
    pub approved: i64,
    /// Approved in their first round (no feedback before).
    pub approved_first_time: i64,
    /// `approved_first_time / approved`, 0–1; `None` with nothing approved.
    pub first_time_right_rate: Option<f64>,
    /// Step number → how many times it was sent back (each feedback counts each of its steps).
    pub rejections_by_step: BTreeMap<i64, i64>,
    /// Median time from a feedback to the resubmission that answered it.
    pub median_resubmit_seconds: Option<i64>,
    /// Median time from the drop's first message to its approval.
    pub median_approval_seconds: Option<i64>,
    /// Photo check flags (quality and reuse) on their drops' photos.
    pub flags: i64,
}

/// A status entry of a drop's history: where it went, and the steps sent back with it.
pub fn status_entry(detail: &str) -> Option<(DropStatus, Vec<i64>)> {
    let (_, rest) = detail.split_once(" → ")?;
    let to = DropStatus::ALL.iter().copied().find(|s| {
        rest.strip_prefix(s.label()).is_some_and(|after| after.is_empty() || after.starts_with(';') || after.starts_with(" ("))
    })?;
    let steps = rest
        .split_once(FEEDBACK_STEPS)
        .map(|(_, list)| list.split(',').filter_map(|s| s.trim().parse::<i64>().ok()).collect())
        .unwrap_or_default();
    Some((to, steps))
}

fn median(mut v: Vec<i64>) -> Option<i64> {
    v.sort_unstable();
    match v.len() {
        0 => None,
        n if n % 2 == 1 => Some(v[n / 2]),
        n => Some((v[n / 2 - 1] + v[n / 2]) / 2),
    }
}

#[derive(sqlx::FromRow)]
struct DropRow {
    drop_id: i64,
    phone: String,
    name: String,
    status: String,
    round: i64,
    created_at: i64,
    approved_at: Option<i64>,
}

/// The drops of the period, with `{project}` replaced by the project condition.
const DROPS: &str = "select d.drop_id, c.phone, c.name, d.status, d.round, d.created_at, d.approved_at
    from drop_job d join contact c on c.contact_id = d.contractor_id
    where d.created_at >= $1 and (d.status <> 'collecting' or d.unreviewed_at is not null) {project}";
const EVENTS: &str = "select e.drop_id, e.at, e.detail from drop_event e join drop_job d on d.drop_id = e.drop_id
    where e.kind = 'status' and d.created_at >= $1 {project} order by e.drop_id, e.event_id";
const FLAGS: &str = "select p.drop_id, count(*) from photo_check f join photo p on p.photo_id = f.photo_id
    join drop_job d on d.drop_id = p.drop_id where f.result = 'flag' and d.created_at >= $1 {project} group by p.drop_id";

impl Store {
    /// The scorecards of the drops started in the last `days` days (1–366), of one project or
    /// all; most drops first.
    pub async fn scorecards(&self, project_id: Option<i64>, days: i64, now: i64) -> CoreResult<Vec<Scorecard>> {
        if !(1..=366).contains(&days) {
            return Err(InputError::new("invalid_days", "days is a number from 1 to 366").into());
        }
        let since = now - days * 86_400_000;
        let cond = if project_id.is_some() { "and d.project_id = $2" } else { "" };
        let (drops, events, flags) = on_db!(self, pool => {
            let d_sql = DROPS.replace("{project}", cond);
            let mut q1 = sqlx::query_as::<_, DropRow>(&d_sql).bind(since);
            let e_sql = EVENTS.replace("{project}", cond);
            let mut q2 = sqlx::query_as::<_, (i64, i64, String)>(&e_sql).bind(since);
            let f_sql = FLAGS.replace("{project}", cond);
            let mut q3 = sqlx::query_as::<_, (i64, i64)>(&f_sql).bind(since);
            if let Some(p) = project_id {
                q1 = q1.bind(p);
                q2 = q2.bind(p);
                q3 = q3.bind(p);
            }
            (q1.fetch_all(pool).await?, q2.fetch_all(pool).await?, q3.fetch_all(pool).await?)
        });
        let flags: HashMap<i64, i64> = flags.into_iter().collect();
        let mut history: HashMap<i64, Vec<(i64, String)>> = HashMap::new();
        for (drop_id, at, detail) in events {
            history.entry(drop_id).or_default().push((at, detail));
        }
        struct Acc {
            card: Scorecard,
            resubmits: Vec<i64>,
            approvals: Vec<i64>,
        }
        let mut by_phone: BTreeMap<String, Acc> = BTreeMap::new();
        for d in drops {
            let acc = by_phone.entry(d.phone.clone()).or_insert_with(|| Acc {
                card: Scorecard {
                    phone: d.phone.clone(),
                    name: d.name.clone(),
                    drops: 0,
                    approved: 0,
                    approved_first_time: 0,
                    first_time_right_rate: None,
                    rejections_by_step: BTreeMap::new(),
                    median_resubmit_seconds: None,
                    median_approval_seconds: None,
                    flags: 0,
                },
                resubmits: vec![],
                approvals: vec![],
            });
            let c = &mut acc.card;
            c.drops += 1;
            c.flags += flags.get(&d.drop_id).copied().unwrap_or(0);
            let mut feedback_at: Option<i64> = None;
            let mut feedbacks = 0;
            for (at, detail) in history.get(&d.drop_id).map(Vec::as_slice).unwrap_or_default() {
                match status_entry(detail) {
                    Some((DropStatus::Incomplete, steps)) => {
                        feedbacks += 1;
                        feedback_at = Some(*at);
                        for s in steps {
                            *c.rejections_by_step.entry(s).or_insert(0) += 1;
                        }
                    }
                    Some((DropStatus::Resubmitted, _)) => {
                        if let Some(f) = feedback_at.take() {
                            acc.resubmits.push((at - f) / 1000);
                        }
                    }
                    _ => {}
                }
            }
            if d.status == DropStatus::Approved.as_str() {
                c.approved += 1;
                // The round counts reviews a drop went through; the history counts feedbacks
                // too (a drop approved in round 1 had none).
                if d.round == 1 && feedbacks == 0 {
                    c.approved_first_time += 1;
                }
                if let Some(a) = d.approved_at {
                    acc.approvals.push((a - d.created_at) / 1000);
                }
            }
        }
        let mut out: Vec<Scorecard> = by_phone
            .into_values()
            .map(|mut a| {
                a.card.first_time_right_rate = (a.card.approved > 0).then(|| a.card.approved_first_time as f64 / a.card.approved as f64);
                a.card.median_resubmit_seconds = median(a.resubmits);
                a.card.median_approval_seconds = median(a.approvals);
                a.card
            })
            .collect();
        out.sort_by(|a, b| b.drops.cmp(&a.drops).then_with(|| a.phone.cmp(&b.phone)));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_entries_read_back_as_their_transition_and_steps() {
        assert_eq!(
            status_entry("Unreviewed → Incomplete; feedback queued for steps 3, 7, 12"),
            Some((DropStatus::Incomplete, vec![3, 7, 12]))
        );
        assert_eq!(status_entry("Incomplete → Resubmitted"), Some((DropStatus::Resubmitted, vec![])));
        assert_eq!(status_entry("Resubmitted → Approved (accepted 2 pending steps)"), Some((DropStatus::Approved, vec![])));
        assert_eq!(status_entry("Collecting → Unreviewed (every step has a photo)"), Some((DropStatus::Unreviewed, vec![])));
        assert_eq!(status_entry("Unreviewed → Approvedish"), None, "a label must end where the entry or its note does");
        assert_eq!(status_entry("photo moved from step 2 to step 3"), None);
        assert_eq!(median(vec![5, 1, 3]), Some(3));
        assert_eq!(median(vec![4, 1, 3, 2]), Some(2));
        assert_eq!(median(vec![]), None);
    }
}
