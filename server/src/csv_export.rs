//! CSV exports, streamed: a list goes out page by page as it is read (keyset pages of 200
//! rows), never whole in memory. RFC 4180 (the `csv` crate quotes what needs it; rows end
//! with CRLF), UTF-8, and safe to open in a spreadsheet: a cell starting with `=`, `+`, `-`,
//! `@` (or a tab or carriage return) gets a leading `'`, so it is shown as text, not run as a
//! formula.

use axum::body::Body;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use dropcheck_core::store::{DropFilter, DropSummary, Store};
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

/// Every drop the filter selects, newest activity first, as CSV: the header with the first
/// page, read before anything is sent (a filter the store refuses, a search too long say, is
/// an error the caller answers with a 4xx), then a chunk per page. A failure after the first
/// bytes ends the download early (logged); the client sees a truncated file, not a wrong one.
pub async fn drops_csv(store: Store, filter: DropFilter) -> Result<impl Stream<Item = Result<Vec<u8>, CoreError>>, CoreError> {
    let (rows, next) = store.list_drops(&filter, None, PAGE).await?;
    let mut first: Vec<Vec<String>> = vec![DROP_COLUMNS.iter().map(|c| c.to_string()).collect()];
    first.extend(rows.into_iter().map(drop_row));
    let first = encode_rows(&first)?;
    let rest = stream::unfold((next, store, filter), |(cursor, store, filter)| async move {
        let cursor = cursor?;
        match store.list_drops(&filter, Some(cursor), PAGE).await {
            Ok((rows, next)) => Some((encode_rows(&rows.into_iter().map(drop_row).collect::<Vec<_>>()), (next, store, filter))),
            Err(e) => {
                tracing::error!(error = ?e, "a CSV export stopped part-way");
                Some((Err(e), (None, store, filter)))
            }
        }
    });
    Ok(stream::once(async move { Ok(first) }).chain(rest))
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
