//! Row ids, one type per table, so a drop's id cannot be passed where a user's is expected.
//! Each is the table's integer key: stored, bound and serialised as that integer (the API's
//! JSON and URLs are unchanged), and read from a URL or form through [`std::str::FromStr`].

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! row_id {
    ($($(#[$m:meta])* $name:ident),+ $(,)?) => {$(
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, sqlx::Type)]
        #[serde(transparent)]
        #[sqlx(transparent)]
        pub struct $name(pub i64);

        impl $name {
            /// The integer key, for the few places that hand it across a boundary untyped
            /// (a page's view model, a URL).
            pub fn get(self) -> i64 {
                self.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
        impl std::str::FromStr for $name {
            type Err = std::num::ParseIntError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.parse().map($name)
            }
        }
    )+};
}

row_id!(
    /// A drop (`drop_job.drop_id`).
    DropId,
    /// A project (`project.project_id`).
    ProjectId,
    /// A user of the web app (`app_user.user_id`).
    UserId,
    /// A message in or out (`message.message_id`).
    MessageId,
    /// A photo of a step (`photo.photo_id`).
    PhotoId,
    /// A drop's history event (`drop_event.event_id`).
    EventId,
    /// An API key (`api_key.api_key_id`).
    ApiKeyId,
    /// A contractor's phone number on record (`contact.contact_id`).
    ContactId,
    /// A file received with a message (`attachment.attachment_id`).
    AttachmentId,
    /// A webhook request as received (`webhook_receipt.receipt_id`).
    ReceiptId,
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{on_db, Db};

    #[test]
    fn an_id_is_its_integer_in_json_and_in_urls() {
        assert_eq!(serde_json::to_string(&DropId(42)).unwrap(), "42");
        assert_eq!(serde_json::from_str::<DropId>("42").unwrap(), DropId(42));
        assert_eq!("42".parse::<UserId>().unwrap(), UserId(42));
        assert!("4x".parse::<UserId>().is_err());
        assert_eq!(MessageId(7).to_string(), "7");
    }

    #[tokio::test]
    async fn an_id_binds_and_decodes_as_its_integer_on_both_backends() {
        crate::testing::on_each_backend(|store| async move {
            let back: (DropId,) =
                on_db!(&store, pool => sqlx::query_as("select $1 as drop_id").bind(DropId(9)).fetch_one(pool).await).unwrap();
            assert_eq!(back.0, DropId(9));
        })
        .await;
    }
}
