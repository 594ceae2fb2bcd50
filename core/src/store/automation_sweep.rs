//! The periodic sweeps every server runs (`DROPCHECK_AUTOMATION_SWEEP_SECONDS`): held
//! statuses and schedules. Each hit becomes a run under a unique key in a transaction of its
//! own, so servers sweeping side by side start it once.

use super::automation_run::{live_rules, RunSubject, ENABLED_RULES};
use super::*;
use crate::automation::{self, schedule, Trigger};

impl Store {
    /// The enabled rules of a trigger type, read on the pool: a sweep that finds nothing to
    /// do never waits for (or holds) SQLite's write lock.
    pub(crate) async fn enabled_rules(&self, trigger_type: &str) -> CoreResult<Vec<super::automation_run::LiveRule>> {
        live_rules(on_db!(self, pool => sqlx::query_as(ENABLED_RULES).bind(trigger_type).bind(true).fetch_all(pool).await?))
    }

    /// Runs `schedule.cron` rules: each instant since the rule last fired that is due now
    /// ([`schedule::due`]) gets a run under the key `tick:{rule}:{instant}`, in a transaction
    /// of its own; however many servers sweep at once, one of them runs it. Returns how many
    /// runs were started.
    pub async fn sweep_schedules(&self, now: i64) -> CoreResult<usize> {
        let rules = self.enabled_rules("schedule.cron").await?;
        let mut started = 0;
        for rule in rules {
            let Trigger::ScheduleCron { cron, time_zone, catch_up } = &rule.spec.trigger else { continue };
            let sched = match schedule::Schedule::parse(cron, time_zone) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(rule = rule.rule_id, error = %e, "stored schedule unreadable; skipped");
                    continue;
                }
            };
            let last: Option<i64> = on_db!(self, pool => sqlx::query_scalar("select max(episode_at) from automation_run where rule_id = $1")
                .bind(rule.rule_id).fetch_one(pool).await?);
            for at in schedule::due(&sched, last.unwrap_or(0).max(rule.updated_at), now, *catch_up) {
                let ctx = serde_json::json!({"scheduled_for": sched.local(at), "time_zone": time_zone});
                let s = RunSubject { subject: "schedule".into(), episode_at: Some(at), ..Default::default() };
                let mut tx = self.begin().await?;
                if tx.fire(&rule, &format!("tick:{}:{at}", rule.rule_id), &ctx, &s, 0).await?.is_some() {
                    started += 1;
                }
                tx.commit().await?;
            }
        }
        Ok(started)
    }

    /// Runs `drop.status_held` rules: every drop that has been in a rule's status for its
    /// minutes and has no run for this episode (the time it entered the status) gets one, in
    /// a transaction of its own. Returns how many runs were started.
    pub async fn sweep_held(&self, now: i64) -> CoreResult<usize> {
        let rules = self.enabled_rules("drop.status_held").await?;
        let mut started = 0;
        for rule in rules {
            let Trigger::DropStatusHeld { status, minutes } = rule.spec.trigger else { continue };
            let since_col = match status {
                DropStatus::Collecting => "created_at",
                DropStatus::Unreviewed => "unreviewed_at",
                DropStatus::Incomplete => "incomplete_at",
                DropStatus::Resubmitted => "resubmitted_at",
                DropStatus::Approved => "approved_at",
            };
            let sql = format!(
                "select d.drop_id, d.drop_number, p.name, d.round, d.{since_col}, c.name, c.phone from drop_job d
                 join project p on p.project_id = d.project_id left join contact c on c.contact_id = d.contractor_id
                 where d.status = $1 and d.{since_col} <= $2 and not exists
                    (select 1 from automation_run r where r.rule_id = $3 and r.drop_id = d.drop_id and r.episode_at = d.{since_col})
                 order by d.{since_col} limit 500"
            );
            type Hit = (i64, String, String, i64, i64, Option<String>, Option<String>);
            let hits: Vec<Hit> = on_db!(self, pool => sqlx::query_as(&sql).bind(status.as_str()).bind(now - i64::from(minutes) * 60_000)
                .bind(rule.rule_id).fetch_all(pool).await?);
            for (drop_id, number, project, round, since, name, phone) in hits {
                let ctx = automation::drop_context(
                    &number,
                    &project,
                    status,
                    None,
                    round,
                    phone.as_deref().map(|p| (name.as_deref().unwrap_or(""), p)),
                );
                let s =
                    RunSubject { subject: number, drop_id: Some(drop_id), contact_phone: phone, episode_at: Some(since), event_id: None };
                let mut tx = self.begin().await?;
                // Still in that status since then? (It may have moved on since the query.)
                let still: Option<i64> = on_tx!(&mut tx, c => sqlx::query_scalar(&format!("select drop_id from drop_job where drop_id = $1 and status = $2 and {since_col} = $3"))
                    .bind(drop_id).bind(status.as_str()).bind(since).fetch_optional(&mut *c).await?);
                if still.is_some() && tx.fire(&rule, &format!("held:{}:{drop_id}:{since}", rule.rule_id), &ctx, &s, 0).await?.is_some() {
                    started += 1;
                }
                tx.commit().await?;
            }
        }
        Ok(started)
    }
}

impl Store {
    /// Resumes runs whose delay is over: each is claimed (`waiting` → `running`) in a
    /// transaction of its own that also does its next actions, so however many servers sweep,
    /// one resumes it, once. A rule turned off, changed or deleted meanwhile cancels the rest.
    /// Returns how many runs were resumed.
    pub async fn sweep_delayed(&self, now: i64) -> CoreResult<usize> {
        let due: Vec<i64> = on_db!(self, pool => sqlx::query_scalar(
            "select run_id from automation_run where status = 'waiting' and resume_at <= $1 order by resume_at limit 200")
            .bind(now).fetch_all(pool).await?);
        let mut resumed = 0;
        for run_id in due {
            let mut tx = self.begin().await?;
            let claimed = on_tx!(&mut tx, c => sqlx::query("update automation_run set status = 'running' where run_id = $1 and status = 'waiting'")
                .bind(run_id).execute(&mut *c).await?.rows_affected());
            if claimed == 0 {
                tx.rollback().await?;
                continue;
            }
            type Row = (i64, i64, String, Option<i64>, Option<i64>, i64, Option<i64>, Option<bool>, Option<String>);
            let (rule_id, run_version, context, drop_id, resume_idx, depth, version, enabled, definition): Row = on_tx!(&mut tx, c => sqlx::query_as(
                "select r.rule_id, r.rule_version, r.context, r.drop_id, r.resume_idx, r.depth, a.version, a.enabled, a.definition
                 from automation_run r left join automation_rule a on a.rule_id = r.rule_id where r.run_id = $1")
                .bind(run_id).fetch_one(&mut *c).await?);
            let live = match (version, enabled, definition) {
                (Some(v), Some(true), Some(d)) if v == run_version => Some(super::automation_run::parse_definition(rule_id, &d)?),
                _ => None,
            };
            let waited = if live.is_some() { "done" } else { "skipped" };
            on_tx!(&mut tx, c => { sqlx::query("update automation_run_action set status = $1 where run_id = $2 and type = 'delay' and status = 'waiting'")
                .bind(waited).bind(run_id).execute(&mut *c).await?; });
            match live {
                Some(spec) => {
                    let ctx: serde_json::Value = serde_json::from_str(&context).unwrap_or_default();
                    let cause = super::automation_run::Cause { rule_id, run_id, depth };
                    let from = resume_idx.unwrap_or(0).max(0) as usize;
                    tx.run_actions(&spec.actions, from, &ctx, cause, drop_id, now_ms()).await?;
                }
                None => {
                    on_tx!(&mut tx, c => { sqlx::query("update automation_run set status = 'cancelled', detail = $1, resume_at = null where run_id = $2")
                        .bind("the rule was turned off, changed or deleted while this run waited").bind(run_id).execute(&mut *c).await?; });
                }
            }
            tx.commit().await?;
            resumed += 1;
        }
        Ok(resumed)
    }
}
