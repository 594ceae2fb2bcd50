//! The `/stats` page's figures: delivery per day (sent, delivered, read, failed) with the
//! failure reasons, and QA per day (drops reviewed), the first-time-right rate and the
//! median time from feedback to resubmission.

use serde::{Deserialize, Serialize};

use crate::error::{CoreResult, InputError};
use crate::store::{on_db, Db, Store};

pub const DAY_MS: i64 = 86_400_000;

/// One day's counts (UTC days).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DayStats {
    /// The day's start, unix ms.
    pub day: i64,
    /// Outbound messages created that day, by where they got to.
    pub sent: i64,
    pub delivered: i64,
    pub read: i64,
    pub failed: i64,
    pub queued: i64,
    /// Reviews that ended in Incomplete or Approved.
    pub reviewed: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub days: Vec<DayStats>,
    /// (error code, count), most frequent first.
    pub failure_reasons: Vec<(String, i64)>,
    /// Drops approved in the period, and how many of them in their first round.
    pub approved: i64,
    pub approved_first_time: i64,
    /// Median time from feedback (Incomplete) to resubmission, over drops resubmitted in the period.
    pub median_fix_ms: Option<i64>,
    pub resubmissions: i64,
    /// Photos received in the period that were checked, and how many of them had a flag.
    pub photos_checked: i64,
    pub photos_flagged: i64,
    /// Photo flags in the period (dismissed or not) by step number, in step order.
    pub flags_by_step: Vec<(i64, i64)>,
    /// Photo flags by contractor (name, phone), most first (at most 10).
    pub flags_by_contractor: Vec<(String, String, i64)>,
}

impl Stats {
    /// First-time-right: approved without a round of feedback, 0–1.
    pub fn first_time_right(&self) -> Option<f64> {
        (self.approved > 0).then(|| self.approved_first_time as f64 / self.approved as f64)
    }
}

impl Store {
    /// The last `days` days (including today), oldest first.
    pub async fn stats(&self, days: i64, now: i64) -> CoreResult<Stats> {
        if !(1..=366).contains(&days) {
            return Err(InputError::new("invalid_days", "days is a number from 1 to 366").into());
        }
        let today = now.div_euclid(DAY_MS);
        let first = today - days + 1;
        let since = first * DAY_MS;
        let (messages, reasons, reviews, approved, fixes) = on_db!(self, pool => {
            let m: Vec<(i64, String, i64)> = sqlx::query_as(
                "select created_at / 86400000 as d, status, count(*) from message
                 where direction = 'out' and created_at >= $1 group by d, status")
                .bind(since).fetch_all(pool).await?;
            let r: Vec<(String, i64)> = sqlx::query_as(
                "select coalesce(error_code, 'unknown') as code, count(*) as n from message
                 where direction = 'out' and status in ('failed', 'undelivered') and created_at >= $1
                 group by code order by n desc, code limit 8")
                .bind(since).fetch_all(pool).await?;
            let v: Vec<(i64, i64)> = sqlx::query_as(
                "select at / 86400000 as d, count(*) from drop_event
                 where kind = 'status' and at >= $1 and (detail like '%→ Incomplete%' or detail like '%→ Approved%') group by d")
                .bind(since).fetch_all(pool).await?;
            let a: (i64, i64) = sqlx::query_as(
                "select count(*), coalesce(sum(case when round = 1 then 1 else 0 end), 0) from drop_job
                 where status = 'approved' and approved_at >= $1")
                .bind(since).fetch_one(pool).await?;
            let f: Vec<i64> = sqlx::query_scalar(
                "select resubmitted_at - incomplete_at from drop_job
                 where resubmitted_at is not null and incomplete_at is not null and resubmitted_at > incomplete_at and resubmitted_at >= $1")
                .bind(since).fetch_all(pool).await?;
            (m, r, v, a, f)
        });
        let (checked, by_step, by_contractor) = on_db!(self, pool => {
            let c: (i64, i64) = sqlx::query_as(
                "select count(*), coalesce(sum(case when exists (select 1 from photo_check f where f.photo_id = p.photo_id
                    and f.result = 'flag') then 1 else 0 end), 0)
                 from photo p where p.received_at >= $1 and exists (select 1 from photo_check k where k.photo_id = p.photo_id)")
                .bind(since).fetch_one(pool).await?;
            let s: Vec<(i64, i64)> = sqlx::query_as(
                "select p.step_no, count(*) from photo_check c join photo p on p.photo_id = c.photo_id
                 where c.result = 'flag' and p.received_at >= $1 group by p.step_no order by p.step_no")
                .bind(since).fetch_all(pool).await?;
            let k: Vec<(String, String, i64)> = sqlx::query_as(
                "select coalesce(ct.name, '') as name, coalesce(ct.phone, '') as phone, count(*) as n
                 from photo_check c join photo p on p.photo_id = c.photo_id join drop_job d on d.drop_id = p.drop_id
                 left join contact ct on ct.contact_id = d.contractor_id
                 where c.result = 'flag' and p.received_at >= $1 group by ct.name, ct.phone order by n desc, phone limit 10")
                .bind(since).fetch_all(pool).await?;
            (c, s, k)
        });
        let mut out: Vec<DayStats> = (first..=today).map(|d| DayStats { day: d * DAY_MS, ..Default::default() }).collect();
        let slot = |out: &mut Vec<DayStats>, d: i64| -> Option<usize> { usize::try_from(d - first).ok().filter(|i| *i < out.len()) };
        for (d, status, n) in messages {
            if let Some(i) = slot(&mut out, d) {
                let day = &mut out[i];
                match status.as_str() {
                    "sent" => day.sent += n,
                    "delivered" => day.delivered += n,
                    "read" => day.read += n,
                    "failed" | "undelivered" => day.failed += n,
                    _ => day.queued += n,
                }
            }
        }
        for (d, n) in reviews {
            if let Some(i) = slot(&mut out, d) {
                out[i].reviewed += n;
            }
        }
        let mut fixes = fixes;
        fixes.sort_unstable();
        let median_fix_ms = match fixes.len() {
            0 => None,
            n if n % 2 == 1 => Some(fixes[n / 2]),
            n => Some((fixes[n / 2 - 1] + fixes[n / 2]) / 2),
        };
        Ok(Stats {
            days: out,
            failure_reasons: reasons,
            approved: approved.0,
            approved_first_time: approved.1,
            median_fix_ms,
            resubmissions: fixes.len() as i64,
            photos_checked: checked.0,
            photos_flagged: checked.1,
            flags_by_step: by_step,
            flags_by_contractor: by_contractor,
        })
    }
}

/// What `/metrics` reads from the database at each scrape (shared by every replica).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OpsCounts {
    /// Inbound events waiting (pending or being processed), and when the oldest arrived.
    pub inbox_pending: i64,
    pub inbox_oldest_pending_at: Option<i64>,
    /// Automation runs by status.
    pub automation_runs: Vec<(String, i64)>,
    /// Photo checks by kind and result (`flag`, `warn`, `pass`).
    pub photo_checks: Vec<(String, String, i64)>,
    /// Outbound webhook deliveries by status.
    pub webhook_deliveries: Vec<(String, i64)>,
}

impl Store {
    pub async fn ops_counts(&self) -> CoreResult<OpsCounts> {
        Ok(on_db!(self, pool => {
            let (pending, oldest): (i64, Option<i64>) = sqlx::query_as(
                "select count(*), min(received_at) from inbound_event where state in ('pending', 'processing')").fetch_one(pool).await?;
            OpsCounts {
                inbox_pending: pending,
                inbox_oldest_pending_at: oldest,
                automation_runs: sqlx::query_as("select status, count(*) from automation_run group by status order by status").fetch_all(pool).await?,
                photo_checks: sqlx::query_as("select kind, result, count(*) from photo_check group by kind, result order by kind, result")
                    .fetch_all(pool).await?,
                webhook_deliveries: sqlx::query_as("select status, count(*) from webhook_delivery group by status order by status")
                    .fetch_all(pool).await?,
            }
        }))
    }
}
