//! CSV exports, streamed: a list goes out page by page as it is read (keyset pages of 200
//! rows), never whole in memory. RFC 4180 (the `csv` crate quotes what needs it; rows end
//! with CRLF), UTF-8, and safe to open in a spreadsheet: a cell starting with `=`, `+`, `-`,
//! `@` (or a tab or carriage return) gets a leading `'`, so it is shown as text, not run as a
//! formula.

use axum::body::Body;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use dropcheck_core::contacts::Contact;
use dropcheck_core::outbox::MessageFilter;
use dropcheck_core::store::{ContactFilter, DropFilter, DropSummary, MessageRow, Store};
use dropcheck_core::CoreError;
use futures_util::stream::{self, Stream, StreamExt};

/// Rows read per page.
const PAGE: i64 = 200;

pub use dropcheck_core::contacts::import::safe_cell;

/// Rows as CSV bytes (each cell made safe).
pub fn encode_rows(rows: &[Vec<String>]) -> Result<Vec<u8>, CoreError> {
    let mut w = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(Vec::new());
    for row in rows {
        w.write_record(row.iter().map(|c| safe_cell(c).into_owned())).map_err(|e| CoreError::Internal(format!("writing CSV: {e}")))?;
    }
    w.into_inner().map_err(|e| CoreError::Internal(format!("writing CSV: {e}")))
}

/// The drops list's columns.
pub const DROP_COLUMNS: &[&str] = &[
    "drop_number",
    "status",
    "project",
    "contractor_phone",
    "contractor_name",
    "round",
    "photo_steps",
    "step_count",
    "open_flags",
    "created_at",
    "activity_at",
];

fn drop_row(d: DropSummary) -> Vec<String> {
    vec![
        d.drop_number.to_string(),
        d.status.as_str().to_string(),
        d.project,
        d.contractor_phone.map(|p| p.to_string()).unwrap_or_default(),
        d.contractor_name.unwrap_or_default(),
        d.round.to_string(),
        d.photo_steps.to_string(),
        d.step_count.to_string(),
        d.open_flags.to_string(),
        crate::api::rfc3339(d.created_at),
        crate::api::rfc3339(d.activity_at),
    ]
}

/// Every row a paged read gives, as CSV: the header with the first page, read before anything
/// is sent (a filter the store refuses is an error the caller answers with a 4xx), then a
/// chunk per page. `read(None)` is the first page, `read(Some(c))` the page after cursor `c`;
/// `None` as the next cursor ends it. A failure after the first bytes ends the download early
/// (logged); the client sees a truncated file, not a wrong one.
pub async fn paged_csv<C, T, F, Fut, R>(
    header: Vec<String>,
    read: F,
    row: R,
) -> Result<impl Stream<Item = Result<Vec<u8>, CoreError>>, CoreError>
where
    C: Send + 'static,
    T: Send + 'static,
    F: Fn(Option<C>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(Vec<T>, Option<C>), CoreError>> + Send + 'static,
    R: Fn(T) -> Vec<String> + Send + Sync + 'static,
{
    let (rows, next) = read(None).await?;
    let mut first: Vec<Vec<String>> = vec![header];
    first.extend(rows.into_iter().map(&row));
    let first = encode_rows(&first)?;
    let rest = stream::unfold((next, std::sync::Arc::new(read), std::sync::Arc::new(row)), |(cursor, read, row)| async move {
        let cursor = cursor?;
        match read(Some(cursor)).await {
            Ok((rows, next)) => Some((encode_rows(&rows.into_iter().map(|r| row(r)).collect::<Vec<_>>()), (next, read, row))),
            Err(e) => {
                tracing::error!(error = ?e, "a CSV export stopped part-way");
                Some((Err(e), (None, read, row)))
            }
        }
    });
    Ok(stream::once(async move { Ok(first) }).chain(rest))
}

fn header(columns: &[&str]) -> Vec<String> {
    columns.iter().map(|c| c.to_string()).collect()
}

/// Every drop the filter selects, newest activity first.
pub async fn drops_csv(store: Store, filter: DropFilter) -> Result<impl Stream<Item = Result<Vec<u8>, CoreError>>, CoreError> {
    let read = move |cursor| {
        let (store, filter) = (store.clone(), filter.clone());
        async move { store.list_drops(&filter, cursor, PAGE).await }
    };
    paged_csv(header(DROP_COLUMNS), read, drop_row).await
}

/// The messages list's columns (as `GET /api/v1/messages` names them).
pub const MESSAGE_COLUMNS: &[&str] = &[
    "id",
    "direction",
    "phone",
    "body",
    "template",
    "status",
    "provider_message_id",
    "error_code",
    "error_text",
    "attempts",
    "drop_number",
    "created_at",
];

fn message_row(m: MessageRow) -> Vec<String> {
    vec![
        m.message_id.to_string(),
        m.direction.as_str().to_string(),
        m.phone.to_string(),
        m.body,
        m.template.unwrap_or_default(),
        m.status,
        m.provider_message_id.unwrap_or_default(),
        m.error_code.unwrap_or_default(),
        m.error_text.unwrap_or_default(),
        m.attempts.to_string(),
        m.drop_number.map(|d| d.to_string()).unwrap_or_default(),
        crate::api::rfc3339(m.created_at),
    ]
}

/// Every message the filter selects, newest first.
pub async fn messages_csv(store: Store, filter: MessageFilter) -> Result<impl Stream<Item = Result<Vec<u8>, CoreError>>, CoreError> {
    let read = move |cursor| {
        let (store, filter) = (store.clone(), filter.clone());
        async move { store.list_messages(&filter, cursor, PAGE).await }
    };
    paged_csv(header(MESSAGE_COLUMNS), read, message_row).await
}

/// The contacts list's columns; then one `attribute:KEY` column per custom attribute.
pub const CONTACT_COLUMNS: &[&str] = &[
    "phone",
    "name",
    "consent",
    "consent_at",
    "consent_source",
    "tags",
    "birthday",
    "time_zone",
    "opted_out",
    "last_inbound_at",
    "created_at",
];

fn contact_row(c: Contact, keys: &[String]) -> Vec<String> {
    let mut row = vec![
        c.phone.to_string(),
        c.name,
        c.consent.status.as_str().to_string(),
        c.consent.at.map(crate::api::rfc3339).unwrap_or_default(),
        c.consent.source.unwrap_or_default(),
        c.tags.join(";"),
        c.birthday.map(|b| b.text()).unwrap_or_default(),
        c.time_zone.unwrap_or_default(),
        c.opted_out.to_string(),
        c.last_inbound_at.map(crate::api::rfc3339).unwrap_or_default(),
        crate::api::rfc3339(c.created_at),
    ];
    for k in keys {
        row.push(match c.attributes.get(k) {
            None | Some(serde_json::Value::Null) => String::new(),
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
        });
    }
    row
}

/// Every contact the filter selects (its offset and limit are ignored), in the list's order;
/// the custom attributes as columns, the tags `;`-separated (as the import reads them).
pub async fn contacts_csv(store: Store, filter: ContactFilter) -> Result<impl Stream<Item = Result<Vec<u8>, CoreError>>, CoreError> {
    let keys: Vec<String> = store.attribute_defs().await?.into_iter().map(|d| d.key).collect();
    let mut head = header(CONTACT_COLUMNS);
    head.extend(keys.iter().map(|k| format!("attribute:{k}")));
    let read = move |offset: Option<i64>| {
        let store = store.clone();
        let filter = ContactFilter { offset: offset.unwrap_or(0), limit: PAGE, ..filter.clone() };
        async move {
            let (rows, _) = store.contacts(&filter).await?;
            let next = (rows.len() as i64 == PAGE).then_some(filter.offset + PAGE);
            Ok((rows, next))
        }
    };
    paged_csv(head, read, move |c| contact_row(c, &keys)).await
}

/// A streamed CSV download named `filename`. The stream is fused: the response's compression
/// polls a body once more after its end, which an unfused `unfold` answers with a panic.
pub fn csv_response(filename: &str, body: impl Stream<Item = Result<Vec<u8>, CoreError>> + Send + 'static) -> Response {
    let body = body.fuse();
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{filename}\"")),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_that_a_spreadsheet_would_run_are_shown_as_text_and_quoting_follows_rfc_4180() {
        assert_eq!(safe_cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        for s in ["+27640412391", "-1", "@SUM(A1)", "\tx", "\rx"] {
            assert!(safe_cell(s).starts_with('\''), "{s:?}");
        }
        assert_eq!(safe_cell("DR12345678"), "DR12345678");
        let out = encode_rows(&[vec!["a,b".into(), "say \"hi\"".into(), "two\nlines".into(), "plain".into()]]).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",plain\r\n");
    }
}
