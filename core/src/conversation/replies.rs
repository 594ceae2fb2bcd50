//! Bot replies: rendered from the stored templates, limited per number, queued in the outbox
//! with an idempotency key, photo acknowledgments merged per burst.

use super::{Turn, ACK_DELAY_MS, REPLIES_PER_MINUTE};
use crate::error::CoreResult;
use crate::ids::DropId;
use crate::store::on_tx;
use crate::templates;

/// The reply limit's state for one number: the times of its replies in the last minute.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecentReplies(Vec<i64>);

impl RecentReplies {
    /// From the stored form ("t1,t2,…"); anything unreadable counts as no recent reply.
    pub fn parse(raw: &str) -> Self {
        Self(raw.split(',').filter_map(|t| t.trim().parse().ok()).collect())
    }

    pub fn encode(&self) -> String {
        self.0.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(",")
    }

    /// Takes a reply at `now` if fewer than [`REPLIES_PER_MINUTE`] went in the 60 s before it.
    pub fn take(&mut self, now: i64) -> bool {
        self.0.retain(|&t| t > now - 60_000 && t <= now);
        if self.0.len() as i64 >= REPLIES_PER_MINUTE {
            return false;
        }
        self.0.push(now);
        true
    }
}

impl Turn<'_, '_> {
    /// Queues a bot reply, unless the number opted out (STOP/START confirmations always go),
    /// the template is disabled, or the number reached [`REPLIES_PER_MINUTE`]. Photo
    /// acknowledgments (`batch_key`) wait [`ACK_DELAY_MS`] for the rest of the burst, and a
    /// later one replaces the unsent one.
    pub(super) async fn reply(
        &mut self,
        template: &str,
        vars: minijinja::Value,
        drop_id: Option<DropId>,
        batch_key: Option<String>,
    ) -> CoreResult<()> {
        let key = format!("{}:{}", self.cause, self.replies);
        self.replies += 1;
        if self.opted_out && !crate::outbox::is_opt_confirmation(template) {
            self.fx.note(format!("reply {template} not sent: opted out"));
            return Ok(());
        }
        let (body, enabled) = self.settings.template(template)?;
        if !enabled {
            self.fx.note(format!("reply {template} not sent: template disabled"));
            return Ok(());
        }
        let body = templates::render(template, body, vars.clone())?;
        let vars = crate::outbox::vars_json(&vars)?;
        let now = self.now;
        let due = if batch_key.is_some() { now + ACK_DELAY_MS } else { now };
        let phone = self.phone.as_str();
        if let Some(batch) = &batch_key {
            // One reply per burst: an unsent reply with the same key is replaced, not repeated.
            let merged = on_tx!(self.tx, c => sqlx::query(
                "update message set body = $1, template_vars = $2, next_attempt_at = $3, updated_at = $4
                 where batch_key = $5 and status = 'queued' and attempts = 0")
                .bind(&body).bind(&vars).bind(due).bind(now).bind(batch).execute(&mut *c).await?.rows_affected());
            if merged > 0 {
                self.burst_open = true;
                self.fx.note(format!("reply {template} merged into the pending one"));
                return Ok(());
            }
        } else if self.burst_open {
            // Any other reply ends the burst: its acknowledgment goes first, now, as it stands.
            on_tx!(self.tx, c => { sqlx::query(
                "update message set batch_key = null, next_attempt_at = $1
                 where phone = $2 and batch_key is not null and direction = 'out' and status = 'queued' and attempts = 0")
                .bind(now - 1).bind(phone).execute(&mut *c).await?; });
            self.burst_open = false;
        }
        if !self.recent_replies.take(now) {
            tracing::info!(template, "reply skipped: {REPLIES_PER_MINUTE} replies a minute reached for this number");
            self.fx.note(format!("reply {template} skipped: {REPLIES_PER_MINUTE} a minute reached"));
            return Ok(());
        }
        let queued = on_tx!(self.tx, c => sqlx::query(
            "insert into message (direction, phone, body, template, template_vars, drop_id, status, attempts, next_attempt_at, batch_key,
                idempotency_key, created_at, updated_at)
             values ('out', $1, $2, $3, $4, $5, 'queued', 0, $6, $7, $8, $9, $9) on conflict (idempotency_key) do nothing")
            .bind(phone).bind(&body).bind(template).bind(&vars).bind(drop_id).bind(due).bind(&batch_key).bind(&key).bind(now)
            .execute(&mut *c).await?.rows_affected());
        if batch_key.is_some() {
            self.burst_open = true;
        }
        self.fx.note(if queued == 1 { format!("reply {template} queued") } else { format!("reply {template} was already queued ({key})") });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_sixty_seconds_hold_more_than_ten_replies() {
        let t0 = 1_000_000;
        let mut r = RecentReplies::default();
        for i in 0..10 {
            assert!(r.take(t0 + i), "reply {i} of the first ten");
        }
        assert!(!r.take(t0 + 10), "the eleventh within the minute");
        assert!(!r.take(t0 + 59_999), "still within a minute of the first");
        assert!(r.take(t0 + 60_000), "a minute after the first, one more");
        assert!(!r.take(t0 + 60_000));
        // Stored and read back, the state is the same.
        let back = RecentReplies::parse(&r.encode());
        assert_eq!(back, r);
        // A number writing constantly, one message a second for ten minutes: never more than
        // ten replies in any 60 s, and about ten a minute still sent.
        let mut r = RecentReplies::default();
        let mut sent = vec![];
        for s in 0..600 {
            if r.take(s * 1000) {
                sent.push(s * 1000);
            }
        }
        for (i, &at) in sent.iter().enumerate() {
            let within = sent[i..].iter().take_while(|&&t| t < at + 60_000).count();
            assert!(within <= 10, "{within} replies in the minute from {at}");
        }
        assert_eq!(sent.len(), 100);
        assert!(RecentReplies::parse("garbage,12").0 == vec![12]);
    }
}
