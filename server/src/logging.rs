//! The log's writer: one event is one line, whatever the event's fields hold. A path, a
//! header or a message body from outside with a newline in it would otherwise start a line
//! of its own that looks like the server's ("log forging"); here every CR, LF and other
//! control character inside an event is written escaped (`\n`, `\r`, `\x07`), so only the
//! event's own end of line ends a line. (ANSI colour escapes are left alone.)

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use std::io::Write;
use tracing::Instrument;
use tracing_subscriber::fmt::MakeWriter;

/// `DROPCHECK_LOG_FORMAT`: `text` (the default) or `json` (one JSON object per line, the
/// current span's fields — the request's — in each).
pub fn init(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,tower_sessions=warn,leptos_axum=warn"));
    let fmt = tracing_subscriber::fmt().with_env_filter(filter).with_target(false).with_writer(OneLine);
    if json {
        fmt.json().flatten_event(true).with_current_span(true).with_span_list(false).init();
    } else {
        fmt.init();
    }
}

/// A request id from the client (`X-Request-Id`, as a proxy sets it) if it is a plain token
/// of at most 64 characters, else a new one.
fn request_id(req: &Request) -> HeaderValue {
    req.headers()
        .get("x-request-id")
        .filter(|v| v.len() <= 64 && v.as_bytes().iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')))
        .filter(|v| !v.is_empty())
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_str(&format!("{:016x}", rand::random::<u64>())).expect("hex is a header value"))
}

/// A span on every HTTP request — method, matched route (the template, never the raw path or
/// query), request id — around everything the request logs, closed by one `request` event
/// with its status and latency; the id goes back in `X-Request-Id`. Static files log at debug.
pub async fn request_span(req: Request, next: Next) -> Response {
    let id = request_id(&req);
    // Static files (the site's wasm, JS and CSS) are served outside the routes: no template.
    let static_file = req.uri().path().starts_with("/pkg/");
    let route = match req.extensions().get::<MatchedPath>() {
        Some(p) => p.as_str().to_owned(),
        None if static_file => "/pkg/*".into(),
        None => "(none)".into(),
    };
    let method = req.method().clone();
    let quiet = static_file || route == "/health";
    let span = tracing::info_span!("request", request_id = %id.to_str().unwrap_or_default(), method = %method, route = %route);
    let started = std::time::Instant::now();
    let mut res = next.run(req).instrument(span.clone()).await;
    let (status, latency_ms) = (res.status().as_u16(), (started.elapsed().as_secs_f64() * 1000.0 * 10.0).round() / 10.0);
    span.in_scope(|| {
        if quiet {
            tracing::debug!(status, latency_ms, "request");
        } else {
            tracing::info!(status, latency_ms, "request");
        }
    });
    res.headers_mut().insert("x-request-id", id);
    res
}

/// `tracing_subscriber::fmt().with_writer(OneLine)`: standard output, one line per event.
#[derive(Clone, Copy, Debug, Default)]
pub struct OneLine;

impl<'a> MakeWriter<'a> for OneLine {
    type Writer = OneLineWriter<std::io::Stdout>;
    fn make_writer(&'a self) -> Self::Writer {
        OneLineWriter(std::io::stdout())
    }
}

/// Escapes control characters in what it is given (one formatted event per write), except
/// a final newline.
pub struct OneLineWriter<W: Write>(pub W);

pub fn escape_event(buf: &[u8]) -> Vec<u8> {
    let (body, end) = match buf.strip_suffix(b"\n") {
        Some(b) => (b, &b"\n"[..]),
        None => (buf, &b""[..]),
    };
    let mut out = Vec::with_capacity(buf.len() + 8);
    for &b in body {
        match b {
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' | 0x1b => out.push(b), // tabs and ANSI colour escapes
            c if c < 0x20 || c == 0x7f => out.extend_from_slice(format!("\\x{c:02x}").as_bytes()),
            c => out.push(c),
        }
    }
    out.extend_from_slice(end);
    out
}

impl<W: Write> Write for OneLineWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write_all(&escape_event(buf))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// What a subscriber wrote, for the tests to read.
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_newline_in_a_field_cannot_start_a_forged_line() {
        let event = b"INFO request refused path=\"/x\nERROR admin signed in\" done\n";
        let out = String::from_utf8(escape_event(event)).unwrap();
        assert_eq!(out.lines().count(), 1, "{out}");
        assert!(out.contains("/x\\nERROR admin signed in"), "{out}");
        assert_eq!(escape_event(b"a\rb\x07c\td\n"), b"a\\rb\\x07c\td\n");
    }

    #[test]
    fn the_subscriber_writes_one_line_per_event() {
        let buf = Buf::default();
        let sink = buf.clone();
        let subscriber = tracing_subscriber::fmt().with_ansi(false).with_writer(move || OneLineWriter(sink.clone())).finish();
        tracing::subscriber::with_default(subscriber, || {
            let path = "/drops/DR1\n2026-12-01T00:00:00Z  INFO signed in user_id=1";
            tracing::info!(path = %path, "not found");
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
    }

    #[test]
    fn json_logs_carry_the_request_span_on_every_line() {
        use tower::ServiceExt;
        let buf = Buf::default();
        let sink = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(move || OneLineWriter(sink.clone()))
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let app = axum::Router::new()
            .route(
                "/drops/{number}",
                axum::routing::get(|| async {
                    tracing::info!("looked up");
                    "ok"
                }),
            )
            .layer(axum::middleware::from_fn(request_span));
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let res = rt.block_on(async {
            let req = axum::http::Request::get("/drops/DR12345678?secret=1")
                .header("x-request-id", "abc-123")
                .body(axum::body::Body::empty())
                .unwrap();
            app.clone().oneshot(req).await.unwrap()
        });
        assert_eq!(res.headers()["x-request-id"], "abc-123");
        let res = rt.block_on(async {
            let req = axum::http::Request::get("/drops/DR1")
                .header("x-request-id", "bad id\twith spaces")
                .body(axum::body::Body::empty())
                .unwrap();
            app.oneshot(req).await.unwrap()
        });
        let fresh = res.headers()["x-request-id"].to_str().unwrap().to_string();
        assert_eq!(fresh.len(), 16, "a new id for one that is not a plain token");
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).expect("each line is one JSON object")).collect();
        assert_eq!(lines.len(), 4, "{text}");
        let inner = &lines[0];
        assert_eq!(inner["message"], "looked up");
        assert_eq!(inner["span"]["request_id"], "abc-123", "the handler's own event carries the request: {inner}");
        assert_eq!(inner["span"]["route"], "/drops/{number}");
        let done = &lines[1];
        assert_eq!((done["message"].as_str(), done["status"].as_u64()), (Some("request"), Some(200)));
        assert_eq!((done["span"]["method"].as_str(), done["span"]["route"].as_str()), (Some("GET"), Some("/drops/{number}")));
        assert!(done["latency_ms"].as_f64().is_some());
        assert!(!text.contains("secret=1") && !text.contains("DR12345678"), "the route template, never the raw path or query");
        assert_eq!(lines[3]["span"]["request_id"], fresh.as_str());
    }
}
