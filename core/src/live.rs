//! Fingerprints for live updates: short strings that change whenever what a live page shows
//! changes. The live-update hub compares them once a second instead of re-rendering pages.

use crate::domain::DropNumber;
use crate::error::CoreResult;
use crate::store::{on_db, Db, Store};

impl Store {
    /// What changes when any drop changes (the drops list's live view): every change to a
    /// drop moves its `activity_at`, so the latest one (an index lookup) and the number of
    /// drops say enough.
    pub async fn list_fingerprint(&self) -> CoreResult<String> {
        let (at, n): (Option<i64>, Option<i64>) = on_db!(self, pool => sqlx::query_as(
            "select (select max(activity_at) from drop_job), (select cast(sum(n) as bigint) from drop_status_count)")
            .fetch_one(pool).await?);
        Ok(format!("{}:{}", at.unwrap_or(0), n.unwrap_or(0)))
    }

    /// What changes when anything any live page shows changes (a drop's activity or status,
    /// any message's delivery state): the live-update hub reads it once a second for all
    /// open pages together, and only then asks the pages' own fingerprints.
    pub async fn change_fingerprint(&self) -> CoreResult<String> {
        let (at, n, m): (Option<i64>, Option<i64>, Option<i64>) = on_db!(self, pool => sqlx::query_as(
            "select (select max(activity_at) from drop_job), (select cast(sum(n) as bigint) from drop_status_count),
                    (select max(updated_at) from message)")
            .fetch_one(pool).await?);
        Ok(format!("{}:{}:{}", at.unwrap_or(0), n.unwrap_or(0), m.unwrap_or(0)))
    }

    /// What changes when anything on a drop's page changes (status, photos, reviews, message
    /// ticks): the live view polls it and tells open pages to refresh.
    pub async fn drop_fingerprint(&self, number: &DropNumber) -> CoreResult<Option<String>> {
        let row: Option<(String, i64, Option<i64>)> = on_db!(self, pool => sqlx::query_as(
            "select d.status, d.activity_at, (select max(m.updated_at) from message m where m.drop_id = d.drop_id)
             from drop_job d where d.drop_number = $1")
            .bind(number.as_str()).fetch_optional(pool).await?);
        Ok(row.map(|(s, a, m)| format!("{s}:{a}:{}", m.unwrap_or(0))))
    }
}
