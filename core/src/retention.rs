//! Retention (issue 15, item 5): provider webhook receipts and finished inbound events older
//! than the configured age (`DROPCHECK_RETENTION_DAYS`, 90) are deleted, a small batch per
//! statement so no sweep holds the database for long. Nothing else is purged: drops, photos,
//! messages and their history stay.

use crate::error::CoreResult;
use crate::store::{on_db, Db, Store};

/// Rows deleted per statement.
pub const BATCH: i64 = 500;

/// What a purge deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Purged {
    pub receipts: u64,
    pub events: u64,
}

impl Store {
    /// Deletes webhook receipts received before `before` and inbound events processed
    /// (`done` or `failed`) that arrived before it, `BATCH` rows a statement, until none is
    /// left. Pending events are never deleted, however old.
    pub async fn purge_old_webhooks(&self, before: i64) -> CoreResult<Purged> {
        let mut purged = Purged::default();
        loop {
            let (events, receipts) = on_db!(self, pool => {
                let e = sqlx::query("delete from inbound_event where event_id in (select event_id from inbound_event
                    where state in ('done', 'failed') and received_at < $1 order by event_id limit $2)")
                    .bind(before).bind(BATCH).execute(pool).await?.rows_affected();
                let r = sqlx::query("delete from webhook_receipt where receipt_id in (select receipt_id from webhook_receipt
                    where received_at < $1 order by receipt_id limit $2)")
                    .bind(before).bind(BATCH).execute(pool).await?.rows_affected();
                (e, r)
            });
            purged.events += events;
            purged.receipts += receipts;
            if events < BATCH as u64 && receipts < BATCH as u64 {
                return Ok(purged);
            }
            tokio::task::yield_now().await;
        }
    }
}
