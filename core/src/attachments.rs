//! Files contractors send with a drop that are not checklist photos (PDFs, voice notes,
//! videos): kept with the drop, listed on its page and served from the media store.

use crate::ids::{AttachmentId, DropId};
use serde::Serialize;
use sqlx::FromRow;

use crate::error::{CoreError, CoreResult};
use crate::store::{on_db, Db, Store};

/// A file kept with a drop that is not a checklist photo.
#[derive(Debug, Clone, Serialize, FromRow)]
pub struct AttachmentRow {
    pub attachment_id: AttachmentId,
    pub drop_id: Option<DropId>,
    pub phone: crate::domain::Phone,
    pub sha256: String,
    pub mime_type: String,
    pub size_bytes: i64,
    pub received_at: i64,
}

impl Store {
    /// The files kept with a drop, oldest first.
    pub async fn attachments_for_drop(&self, drop_id: DropId) -> CoreResult<Vec<AttachmentRow>> {
        Ok(on_db!(self, pool => sqlx::query_as::<_, AttachmentRow>(
            "select attachment_id, drop_id, phone, sha256, mime_type, size_bytes, received_at from attachment where drop_id = $1 order by attachment_id")
            .bind(drop_id).fetch_all(pool).await?))
    }

    pub async fn attachment(&self, attachment_id: AttachmentId) -> CoreResult<AttachmentRow> {
        on_db!(self, pool => sqlx::query_as::<_, AttachmentRow>(
            "select attachment_id, drop_id, phone, sha256, mime_type, size_bytes, received_at from attachment where attachment_id = $1")
            .bind(attachment_id).fetch_optional(pool).await?)
        .ok_or_else(|| CoreError::not_found("attachment_not_found", format!("attachment {attachment_id}")))
    }
}
