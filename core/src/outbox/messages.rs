//! Messages as read: the list with its filters (`/messages`, `GET /api/v1/messages`), one
//! message, the contacts' numbers, and the outbox's counts by status.

use crate::error::{CoreError, CoreResult};
use crate::ids::MessageId;
use crate::store::{bind_args, on_db, Arg, Db, Keyed, MessageRow, Store, MESSAGE_SELECT};
use serde::Serialize;

/// Filters of the messages list (`/messages`, `GET /api/v1/messages`).
#[derive(Debug, Clone, Default)]
pub struct MessageFilter {
    /// Digits the phone number contains.
    pub phone: Option<String>,
    pub direction: Option<crate::domain::Direction>,
    /// A status; `failed` also matches `undelivered`.
    pub status: Option<String>,
    pub drop_number: Option<crate::domain::DropNumber>,
    /// Created at or after (unix ms), e.g. from `days`.
    pub since_ms: Option<i64>,
}

impl MessageFilter {
    /// Reads the filters as typed in a query string (the API and the /messages page share it).
    pub fn parse(
        phone: Option<String>,
        direction: Option<String>,
        status: Option<String>,
        drop: Option<String>,
        days: Option<i64>,
        now: i64,
    ) -> Result<Self, crate::InputError> {
        use crate::InputError;
        let nonempty = |o: Option<String>| o.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
        let direction = nonempty(direction).map(|d| crate::domain::Direction::parse(&d)).transpose()?;
        let status = nonempty(status);
        if let Some(s) = &status {
            if !["queued", "sending", "sent", "delivered", "read", "failed", "undelivered", "received"].contains(&s.as_str()) {
                return Err(InputError::new("invalid_status", format!("'{s}' is not a message status")));
            }
        }
        let drop_number = match nonempty(drop) {
            Some(d) => Some(crate::domain::DropNumber::parse(&d)?),
            None => None,
        };
        let since_ms = match days {
            Some(d) if (1..=3650).contains(&d) => Some(now - d * 86_400_000),
            Some(_) => return Err(InputError::new("invalid_days", "days is a number from 1 to 3650")),
            None => None,
        };
        Ok(Self { phone: nonempty(phone), direction, status, drop_number, since_ms })
    }
}

/// Counts of outbound messages by status, for health and the messages page.
#[derive(Debug, Clone, Default, Serialize)]
pub struct OutboxCounts {
    pub queued: i64,
    pub sending: i64,
    pub sent: i64,
    pub delivered: i64,
    pub read: i64,
    pub failed: i64,
}

impl Store {
    pub async fn message(&self, message_id: MessageId) -> CoreResult<MessageRow> {
        on_db!(self, pool => sqlx::query_as::<_, Keyed<MessageRow>>(&format!("{MESSAGE_SELECT} where m.message_id = $1"))
            .bind(message_id).fetch_optional(pool).await?)
        .map(|k| k.0)
        .ok_or_else(|| CoreError::not_found("message_not_found", format!("message {message_id}")))
    }

    /// Message history, newest first, after `cursor` (a message id). Returns the next cursor.
    pub async fn list_messages(
        &self,
        f: &MessageFilter,
        cursor: Option<MessageId>,
        limit: i64,
    ) -> CoreResult<(Vec<MessageRow>, Option<MessageId>)> {
        let limit = limit.clamp(1, 200);
        crate::store::check_search("phone", f.phone.as_deref())?;
        let mut conds: Vec<String> = vec![];
        let mut args: Vec<Arg> = vec![];
        let mut p = |a: Arg| {
            args.push(a);
            format!("${}", args.len())
        };
        if let Some(phone) = f.phone.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            let digits: String = phone.chars().filter(|c| c.is_ascii_digit()).collect();
            conds.push(format!("m.phone like {}", p(Arg::S(format!("%{digits}%")))));
        }
        if let Some(d) = &f.direction {
            conds.push(format!("m.direction = {}", p(Arg::S(d.as_str().into()))));
        }
        if let Some(st) = &f.status {
            if st == "failed" {
                conds.push("m.status in ('failed', 'undelivered')".into());
            } else {
                conds.push(format!("m.status = {}", p(Arg::S(st.clone()))));
            }
        }
        if let Some(dnum) = &f.drop_number {
            conds.push(format!("d.drop_number = {}", p(Arg::S(dnum.to_string()))));
        }
        if let Some(since) = f.since_ms {
            conds.push(format!("m.created_at >= {}", p(Arg::I(since))));
        }
        if let Some(c) = cursor {
            conds.push(format!("m.message_id < {}", p(Arg::I(c.get()))));
        }
        let lim = p(Arg::I(limit + 1));
        let where_ = if conds.is_empty() { String::new() } else { format!(" where {}", conds.join(" and ")) };
        let sql = format!("{MESSAGE_SELECT}{where_} order by m.message_id desc limit {lim}");
        let mut rows =
            Keyed::all(on_db!(self, pool => bind_args!(sqlx::query_as::<_, Keyed<MessageRow>>(&sql), &args).fetch_all(pool).await?));
        let next = if rows.len() as i64 > limit {
            rows.truncate(limit as usize);
            rows.last().map(|r| r.message_id)
        } else {
            None
        };
        Ok((rows, next))
    }

    /// The most recently active contacts' numbers (the sandbox's phone picker).
    pub async fn contact_phones(&self, limit: i64) -> CoreResult<Vec<crate::domain::Phone>> {
        Ok(on_db!(self, pool => sqlx::query_scalar::<_, crate::domain::Phone>(
            "select phone from contact order by coalesce(last_inbound_at, created_at) desc limit $1")
            .bind(limit).fetch_all(pool).await?))
    }

    pub async fn outbox_counts(&self) -> CoreResult<OutboxCounts> {
        let rows: Vec<(String, i64)> = on_db!(self, pool => sqlx::query_as(
            "select status, count(*) from message where direction = 'out' group by status").fetch_all(pool).await?);
        let mut c = OutboxCounts::default();
        for (s, n) in rows {
            match s.as_str() {
                "queued" => c.queued += n,
                "sending" => c.sending += n,
                "sent" => c.sent += n,
                "delivered" => c.delivered += n,
                "read" => c.read += n,
                "failed" | "undelivered" => c.failed += n,
                _ => {}
            }
        }
        Ok(c)
    }
}
