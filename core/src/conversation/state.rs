//! Each number's conversation state (its project and drop, recent replies, an open burst),
//! read once per batch and written once per commit.

use super::*;
use crate::ids::{DropId, ProjectId};

impl Tx<'_> {
    /// Reads the stored conversations of these numbers, one statement per 500 (a batch of
    /// events reads its numbers' conversations at once).
    pub async fn read_conversations(&mut self, phones: &[&str]) -> CoreResult<Conversations> {
        let mut found = Conversations::default();
        for chunk in phones.chunks(500) {
            let sql = format!(
                "select phone, project_id, drop_id, updated_at, recent_replies, burst_open from conversation where phone in {}",
                crate::inbox::placeholder_rows(1, chunk.len())
            );
            let rows: Vec<StoredConversation> = on_tx!(self, c => {
                let mut q = sqlx::query_as(&sql);
                for p in chunk {
                    q = q.bind(*p);
                }
                q.fetch_all(&mut *c).await?
            });
            for p in chunk {
                found.rows.entry(p.to_string()).or_insert(None);
            }
            for row in rows {
                let (phone, row) = row.into_row();
                found.rows.insert(phone, Some(row));
            }
        }
        Ok(found)
    }

    /// Writes the conversations changed since they were read: one statement per 100.
    pub async fn write_conversations(&mut self, conversations: &Conversations) -> CoreResult<()> {
        let mut changed: Vec<(&str, &ConversationRow)> = conversations
            .dirty
            .iter()
            .filter_map(|p| conversations.rows.get(p).and_then(Option::as_ref).map(|r| (p.as_str(), r)))
            .collect();
        // One order, so two writers never lock the same rows in opposite orders.
        changed.sort_by_key(|(p, _)| *p);
        for chunk in changed.chunks(100) {
            let sql = format!(
                "insert into conversation (phone, project_id, drop_id, updated_at, recent_replies, burst_open) values {}
                 on conflict (phone) do update set project_id = excluded.project_id, drop_id = excluded.drop_id,
                    updated_at = excluded.updated_at, recent_replies = excluded.recent_replies, burst_open = excluded.burst_open",
                crate::inbox::placeholder_rows(chunk.len(), 6)
            );
            on_tx!(self, c => {
                let mut q = sqlx::query(&sql);
                for (phone, r) in chunk {
                    q = q.bind(*phone).bind(r.project_id).bind(r.drop_id).bind(r.updated_at).bind(r.recent_replies.encode()).bind(r.burst_open as i64);
                }
                q.execute(&mut *c).await?;
            });
        }
        Ok(())
    }
}

/// Conversations as a transaction reads and changes them: each number's row read once (or
/// all of a batch's at once, [`Tx::read_conversations`]), changed in memory message by
/// message, and written once before the commit ([`Tx::write_conversations`]). A message
/// rolled back to its savepoint puts its number's entry back ([`Conversations::saved`],
/// [`Conversations::restore`]).
#[derive(Debug, Default, Clone)]
pub struct Conversations {
    /// By number: the row as it stands in this transaction (`None`: no row yet).
    rows: HashMap<String, Option<ConversationRow>>,
    /// Numbers whose row changed since it was read.
    dirty: std::collections::HashSet<String>,
    /// Photos filed now get a vision check (a vision model is configured).
    pub(crate) vision: bool,
}

/// A number's entry as it was before a message, to put back if the message is rolled back.
pub struct SavedConversation {
    phone: String,
    entry: Option<Option<ConversationRow>>,
    dirty: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct ConversationRow {
    pub(crate) project_id: Option<ProjectId>,
    pub(crate) drop_id: Option<DropId>,
    pub(crate) updated_at: i64,
    pub(crate) recent_replies: RecentReplies,
    pub(crate) burst_open: bool,
}

#[derive(sqlx::FromRow)]
struct StoredConversation {
    phone: String,
    project_id: Option<ProjectId>,
    drop_id: Option<DropId>,
    updated_at: i64,
    recent_replies: String,
    burst_open: i64,
}

impl StoredConversation {
    fn into_row(self) -> (String, ConversationRow) {
        let row = ConversationRow {
            project_id: self.project_id,
            drop_id: self.drop_id,
            updated_at: self.updated_at,
            recent_replies: RecentReplies::parse(&self.recent_replies),
            burst_open: self.burst_open != 0,
        };
        (self.phone, row)
    }
}

impl Conversations {
    /// The number's context (expired after [`CONTEXT_IDLE_MS`] idle), its reply-limit state
    /// and whether a burst may be open; read in `tx` if this number was not read yet.
    pub(crate) async fn get(&mut self, tx: &mut Tx<'_>, phone: &str, now: i64) -> CoreResult<Conversation> {
        if !self.rows.contains_key(phone) {
            self.extend(tx.read_conversations(&[phone]).await?);
        }
        let Some(Some(row)) = self.rows.get(phone) else {
            // Every reply is queued with the conversation's row: none, no burst.
            return Ok(Conversation { ctx: Ctx::default(), recent_replies: RecentReplies::default(), burst_open: false });
        };
        let ctx =
            if now - row.updated_at <= CONTEXT_IDLE_MS { Ctx { project_id: row.project_id, drop_id: row.drop_id } } else { Ctx::default() };
        Ok(Conversation { ctx, recent_replies: row.recent_replies.clone(), burst_open: row.burst_open })
    }

    /// Whether this number's row was read (or written) here.
    pub fn knows(&self, phone: &str) -> bool {
        self.rows.contains_key(phone)
    }

    /// Adds the entries of numbers read later.
    pub fn extend(&mut self, read: Conversations) {
        self.rows.extend(read.rows);
        self.dirty.extend(read.dirty);
    }

    /// The changes were written (and committed): nothing is left to write.
    pub fn written(&mut self) {
        self.dirty.clear();
    }

    pub(crate) fn set(&mut self, phone: &str, row: ConversationRow) {
        self.rows.insert(phone.to_string(), Some(row));
        self.dirty.insert(phone.to_string());
    }

    /// The number's entry now (before a message that may be rolled back).
    pub fn saved(&self, phone: &str) -> SavedConversation {
        SavedConversation { phone: phone.to_string(), entry: self.rows.get(phone).cloned(), dirty: self.dirty.contains(phone) }
    }

    /// Puts a number's entry back as it was saved (its message was rolled back).
    pub fn restore(&mut self, saved: SavedConversation) {
        match saved.entry {
            Some(entry) => self.rows.insert(saved.phone.clone(), entry),
            None => self.rows.remove(&saved.phone),
        };
        if saved.dirty {
            self.dirty.insert(saved.phone);
        } else {
            self.dirty.remove(&saved.phone);
        }
    }
}
