//! The browser-facing routes that are not Leptos pages (media, "next drop"), and the two
//! middlewares every browser request passes: sign-in gating and CSRF checks.

use app::ssr::{session_user, AppState, SignedIn};
use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use dropcheck_core::domain::{DropNumber, Role};
use dropcheck_core::ids::{AttachmentId, PhotoId};
use serde::Deserialize;
use tower_sessions::Session;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/media/{photo_id}", get(original))
        .route("/media/{photo_id}/thumb", get(thumbnail))
        .route("/next", get(next_drop))
        .route("/live/drops", get(live_list))
        .route("/live/drops/{number}", get(live_drop))
        .route("/attachments/{id}", get(attachment))
        .route("/drops/{number}/evidence.pdf", get(evidence))
        .route("/drops.csv", get(drops_csv))
        .route("/messages.csv", get(messages_csv))
        .route("/contacts.csv", get(contacts_csv))
}

/// The drops list as CSV, with the page's filters (the list's "Download CSV"): every matching
/// drop, streamed.
async fn drops_csv(
    State(st): State<AppState>,
    query: Result<Query<dropcheck_core::store::DropQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let back = ("/", "Back to the drops");
    let filter = query.map_err(|e| e.body_text()).and_then(|Query(q)| q.filter().map_err(|e| e.message));
    match filter {
        Ok(f) => csv_download("drops.csv", back, crate::csv_export::drops_csv(st.store.clone(), f).await),
        Err(why) => csv_refused(&why, back),
    }
}

/// The messages list's filters, as its page sends them.
#[derive(serde::Deserialize)]
struct MessagesCsvQuery {
    phone: Option<String>,
    direction: Option<String>,
    status: Option<String>,
    drop: Option<String>,
    days: Option<i64>,
}

/// `GET /messages.csv` with the messages page's filters: every matching message, streamed.
async fn messages_csv(
    State(st): State<AppState>,
    query: Result<Query<MessagesCsvQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let back = ("/messages", "Back to the messages");
    let filter = query.map_err(|e| e.body_text()).and_then(|Query(q)| {
        let blank = |o: Option<String>| o.filter(|s| !s.trim().is_empty());
        dropcheck_core::outbox::MessageFilter::parse(
            blank(q.phone),
            blank(q.direction),
            blank(q.status),
            blank(q.drop),
            q.days,
            dropcheck_core::now_ms(),
        )
        .map_err(|e| e.message)
    });
    match filter {
        Ok(f) => csv_download("messages.csv", back, crate::csv_export::messages_csv(st.store.clone(), f).await),
        Err(why) => csv_refused(&why, back),
    }
}

/// The contacts list's filters, as its page sends them (`attribute` and `value` apart).
#[derive(serde::Deserialize)]
struct ContactsCsvQuery {
    q: Option<String>,
    tag: Option<String>,
    attribute: Option<String>,
    value: Option<String>,
    consent: Option<String>,
}

/// `GET /contacts.csv` with the contacts page's filters: every matching contact, streamed.
async fn contacts_csv(
    State(st): State<AppState>,
    query: Result<Query<ContactsCsvQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let back = ("/contacts", "Back to the contacts");
    let filter = query.map_err(|e| e.body_text()).and_then(|Query(q)| {
        let blank = |o: Option<String>| o.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
        let consent = match blank(q.consent) {
            Some(c) => Some(dropcheck_core::contacts::ConsentStatus::parse(&c).map_err(|e| e.message)?),
            None => None,
        };
        Ok(dropcheck_core::store::ContactFilter {
            q: blank(q.q),
            tag: blank(q.tag),
            attribute: blank(q.attribute).zip(blank(q.value)),
            consent,
            offset: 0,
            limit: 200,
        })
    });
    match filter {
        Ok(f) => csv_download("contacts.csv", back, crate::csv_export::contacts_csv(st.store.clone(), f).await),
        Err(why) => csv_refused(&why, back),
    }
}

fn csv_refused(why: &str, back: (&str, &str)) -> Response {
    tracing::info!(error = %why, "CSV download refused");
    notice_page(StatusCode::BAD_REQUEST, "Not a list to download", why, back)
}

/// A CSV download, or the page that says why there is none.
fn csv_download(
    name: &str,
    back: (&str, &str),
    rows: Result<impl futures_util::Stream<Item = Result<Vec<u8>, dropcheck_core::CoreError>> + Send + 'static, dropcheck_core::CoreError>,
) -> Response {
    match rows {
        Ok(rows) => crate::csv_export::csv_response(name, rows),
        Err(dropcheck_core::CoreError::Input(e)) => csv_refused(&e.message, back),
        Err(e) => {
            tracing::error!(error = ?e, "CSV download failed");
            notice_page(StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong", "The download failed; it has been logged.", back)
        }
    }
}

/// Paths anyone may reach; everything else needs a signed-in user.
fn is_public(path: &str) -> bool {
    matches!(path, "/login" | "/setup" | "/health" | "/db/test" | "/favicon.svg" | "/rpc/login" | "/rpc/setup" | "/rpc/logout" | "/send")
        || path.starts_with("/pkg/")
        || path.starts_with("/sandbox/media/")
        || path.starts_with("/api/")
        || path.starts_with("/webhooks/")
}

/// The admins' pages (a reviewer gets the "Admins only" page). Their server functions are not
/// listed: each checks the role itself (`require_admin`) and answers 403.
fn is_admin_only(path: &str) -> bool {
    // Every user links their own phone under Settings → Integrations.
    (path.starts_with("/settings/") && path != "/settings/integrations")
        || path == "/settings"
        || path == "/events"
        || path.starts_with("/events/")
        || path.starts_with("/contacts/import")
        || path == "/contacts/upload"
        || path.starts_with("/contacts/attributes")
        || path == "/broadcasts"
        || path.starts_with("/broadcasts/")
}

/// The path as the gate judges it: percent-decoded, repeated and trailing slashes removed,
/// lower-case, so `/events/`, `//Events` and `/%65vents` are all `/events`. `None` for a
/// path with `.` or `..` segments or a NUL, which no page of ours has (browsers resolve dot
/// segments before sending).
pub(crate) fn normalised_path(raw: &str) -> Option<String> {
    let decoded: String = percent_decode(raw)?;
    let mut out = String::with_capacity(decoded.len());
    for seg in decoded.split('/').filter(|s| !s.is_empty()) {
        if seg == "." || seg == ".." || seg.contains('\0') {
            return None;
        }
        out.push('/');
        out.push_str(&seg.to_lowercase());
    }
    if out.is_empty() {
        out.push('/');
    }
    Some(out)
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Sends visitors without a session to sign in (or to `/setup` on a fresh install), keeps
/// reviewers out of admin pages (403), and keeps signed-in users off the sign-in page.
pub async fn gate(State(st): State<AppState>, session: Session, mut req: Request, next: Next) -> Response {
    let Some(path) = normalised_path(req.uri().path()) else {
        tracing::info!(path = ?req.uri().path(), "path with dot segments refused");
        return notice_page(
            StatusCode::BAD_REQUEST,
            "Not a page",
            "That address is not one of Dropcheck's pages.",
            ("/", "Back to the drops"),
        );
    };
    // Public paths are judged by the path as sent (exact routes); everything else needs a
    // user, and the admin check sees the normalised path.
    let user = match session_user(&session, &st.store).await {
        Ok(u) => u,
        Err(e) => {
            tracing::error!(error = ?e, "session lookup failed");
            return (StatusCode::INTERNAL_SERVER_ERROR, "Internal error; it has been logged.").into_response();
        }
    };
    if path == "/setup" || path == "/login" {
        if user.is_some() {
            return Redirect::to("/").into_response();
        }
        let users = st.store.user_count().await.unwrap_or(1);
        return match (path.as_str(), users) {
            ("/setup", n) if n > 0 => Redirect::to("/login").into_response(),
            ("/login", 0) => Redirect::to("/setup").into_response(),
            _ => next.run(req).await,
        };
    }
    if is_public(req.uri().path()) && is_public(&path) {
        return next.run(req).await;
    }
    match user {
        Some(u) if is_admin_only(&path) && u.role() != Role::Admin => {
            tracing::info!(user_id = u.user_id.get(), path = ?path, "admin page refused");
            forbidden(&path)
        }
        Some(u) => {
            touch(&session).await;
            // Server functions and pages take the user from here instead of looking it up again.
            req.extensions_mut().insert(SignedIn(u));
            next.run(req).await
        }
        None if req.method() == Method::GET && !path.starts_with("/rpc/") => Redirect::to("/login").into_response(),
        None => (StatusCode::UNAUTHORIZED, "Your session has ended; sign in again.").into_response(),
    }
}

/// Slides the idle timeout: a changed session is saved with a new expiry, so changing it at
/// most once a minute keeps an active session alive without a database write per request.
async fn touch(session: &Session) {
    const SEEN_AT: &str = "seen_at";
    let now = dropcheck_core::now_ms();
    let seen: Option<i64> = match session.get(SEEN_AT).await {
        Ok(seen) => seen,
        Err(e) => {
            // Unreadable: leave the session as it is rather than treat it as never seen.
            tracing::warn!(error = %e, "session read failed");
            return;
        }
    };
    if seen.is_none_or(|s| now - s >= 60_000) {
        if let Err(e) = session.insert(SEEN_AT, now).await {
            tracing::warn!(error = %e, "session touch failed");
        }
    }
}

fn forbidden(path: &str) -> Response {
    let text = format!("{path} is for admins. Ask an admin if you need a change made there.");
    notice_page(StatusCode::FORBIDDEN, "Admins only", &text, ("/", "Back to the drops"))
}

/// A small server-rendered page with a title, a sentence and a way back (for answers that
/// are not Leptos pages: refusals, form errors of plain-form routes).
pub(crate) fn notice_page(status: StatusCode, title: &str, text: &str, back: (&str, &str)) -> Response {
    let body = format!(
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title} · Dropcheck</title>
<link rel="stylesheet" href="/pkg/dropcheck.css"></head>
<body class="bg-slate-50 text-slate-900"><main class="mx-auto mt-24 max-w-md text-center">
<h1 class="text-2xl font-semibold">{title}</h1>
<p class="mt-2 text-slate-600">{}</p>
<a href="{}" class="mt-4 inline-block text-blue-700 underline">{}</a></main></body></html>"#,
        html_escape(text),
        back.0,
        back.1
    );
    (status, Html(body)).into_response()
}

pub(crate) fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// CSRF defence for cookie-authenticated requests (OWASP): a state-changing request must be
/// addressed to our own host name (the Host header against `DROPCHECK_PUBLIC_URL`, so a
/// DNS-rebinding page on another name cannot act even though the browser calls it
/// same-origin) and come from our own pages, shown by `Sec-Fetch-Site: same-origin`, or, from
/// browsers without it, by an `Origin` (else `Referer`) of our own origin. API and webhook
/// routes carry no cookies' authority (API keys, signatures) and are exempt.
pub async fn csrf(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let path = req.uri().path();
    let exempt = path.starts_with("/api/") || path.starts_with("/webhooks/") || path == "/send";
    if safe || exempt {
        return next.run(req).await;
    }
    if !host_is_ours(req.headers(), &st.settings.public_url) {
        tracing::warn!(path = ?path, host = ?req.headers().get(header::HOST), "request for another host name refused");
        let text = format!("Open Dropcheck at its own address, {}, to make changes.", st.settings.public_url);
        return notice_page(StatusCode::FORBIDDEN, "Wrong address", &text, (&st.settings.public_url, "Go there"));
    }
    if same_origin(req.headers(), &st.settings.public_url) {
        return next.run(req).await;
    }
    tracing::warn!(path = ?path, "cross-site request refused");
    (StatusCode::FORBIDDEN, "Cross-site request refused.").into_response()
}

/// The host name (without port) of an origin or a Host header value.
fn host_name(authority: &str) -> &str {
    let a = authority.rsplit('@').next().unwrap_or(authority);
    if let Some(rest) = a.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest); // [::1]:3000
    }
    a.split(':').next().unwrap_or(a)
}

/// Whether the request's Host is one a browser can only have reached us by: the public URL's
/// host name (any port: a port does not change whose server it is, and tests listen on random
/// ones), or an IP address or `localhost` (direct access, or a reverse proxy that forwards to
/// our address). A DNS-rebinding page always names a host of the attacker's, which is none
/// of these.
pub(crate) fn host_is_ours(h: &HeaderMap, public_url: &str) -> bool {
    let ours = public_url.split_once("://").map(|(_, r)| r.split('/').next().unwrap_or(r)).unwrap_or(public_url);
    let Some(host) = h.get(header::HOST).and_then(|v| v.to_str().ok()) else { return false };
    let name = host_name(host);
    name.eq_ignore_ascii_case(host_name(ours)) || name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok()
}

pub(crate) fn same_origin(h: &HeaderMap, public_url: &str) -> bool {
    let get = |name: header::HeaderName| h.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = h.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return site == "same-origin";
    }
    let host = get(header::HOST).unwrap_or_default();
    let ours = |origin: &str| origin == public_url || origin == format!("http://{host}") || origin == format!("https://{host}");
    if let Some(origin) = get(header::ORIGIN) {
        return ours(origin);
    }
    if let Some(referer) = get(header::REFERER) {
        // scheme://host[:port] of the referer
        let origin: String = match referer.find("://") {
            Some(i) => {
                let rest = &referer[i + 3..];
                let end = rest.find('/').map(|e| i + 3 + e).unwrap_or(referer.len());
                referer[..end].to_string()
            }
            None => return false,
        };
        return ours(&origin);
    }
    false
}

async fn load_photo(st: &AppState, raw: &str) -> Result<dropcheck_core::store::PhotoInfo, Response> {
    let id: PhotoId = raw.parse().map_err(|_| (StatusCode::BAD_REQUEST, "not a photo id").into_response())?;
    st.store.photo(id).await.map_err(|e| match e {
        dropcheck_core::CoreError::NotFound { .. } => (StatusCode::NOT_FOUND, "no such photo").into_response(),
        e => {
            tracing::error!(error = ?e, "photo lookup failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    })
}

/// A stored file as a response that can never run as active content on our origin: a photo
/// is shown inline only when its bytes are JPEG or PNG (the type is taken from the bytes,
/// not from the database or a URL); anything else is a download, never sniffed, and
/// sandboxed should a browser render it anyway.
pub(crate) fn stored_file(bytes: Vec<u8>, declared: &str, download_name: &str, show_photos: bool) -> Response {
    let cache = (header::CACHE_CONTROL, "private, max-age=31536000, immutable".to_string());
    if let Some(photo) = dropcheck_core::media::sniff_photo(&bytes).filter(|_| show_photos) {
        return ([(header::CONTENT_TYPE, photo.to_string()), cache], Body::from(bytes)).into_response();
    }
    let ct = dropcheck_core::media::safe_content_type(declared).unwrap_or_else(|| "application/octet-stream".into());
    let name: String = download_name.chars().filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c)).collect();
    (
        [
            (header::CONTENT_TYPE, ct),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
            (header::CONTENT_SECURITY_POLICY, "sandbox; default-src 'none'".to_string()),
            cache,
        ],
        Body::from(bytes),
    )
        .into_response()
}

async fn send_file(path: std::path::PathBuf, mime: &str, name: &str) -> Response {
    match tokio::fs::read(&path).await {
        Ok(bytes) => stored_file(bytes, mime, name, true),
        Err(e) => {
            tracing::error!(error = %e, path = %path.display(), "media file missing");
            (StatusCode::NOT_FOUND, "the photo file is missing").into_response()
        }
    }
}

async fn original(State(st): State<AppState>, Path(id): Path<String>) -> Response {
    let p = match load_photo(&st, &id).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    match st.media.original_path(&p.sha256) {
        Ok(path) => send_file(path, &p.mime_type, &format!("dropcheck-photo-{}", p.photo_id)).await,
        Err(_) => (StatusCode::NOT_FOUND, "no such photo").into_response(),
    }
}

async fn thumbnail(State(st): State<AppState>, Path(id): Path<String>) -> Response {
    let p = match load_photo(&st, &id).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    match st.media.thumbnail(&p.sha256).await {
        Ok(path) => send_file(path, "image/jpeg", &format!("dropcheck-thumb-{}", p.photo_id)).await,
        Err(e) => {
            tracing::warn!(error = ?e, photo_id = p.photo_id.get(), "thumbnail unavailable");
            (StatusCode::NOT_FOUND, "thumbnail unavailable").into_response()
        }
    }
}

/// A file a contractor sent that is not a checklist photo. Always a download (never shown
/// inline, never sniffed), since its content type comes from outside.
/// What a page says when a form post is refused: the store's own words for bad input, a
/// missing thing or a conflict; anything else is logged (as a failed `what`) and not shown.
pub(crate) fn refusal_text(e: dropcheck_core::CoreError, what: &str) -> String {
    use dropcheck_core::CoreError;
    match e {
        CoreError::Input(e) => e.message,
        CoreError::NotFound { what, .. } => format!("There is {what}."),
        CoreError::Conflict { message, .. } => message,
        e => {
            tracing::error!(error = ?e, "{what} failed");
            "Something went wrong; it has been logged.".into()
        }
    }
}

/// A drop's evidence pack as a download.
pub(crate) fn pdf_response(number: &dropcheck_core::domain::DropNumber, pdf: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/pdf".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"evidence-{number}.pdf\"")),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        pdf,
    )
        .into_response()
}

/// `GET /drops/{number}/evidence.pdf` (the drop page's "Evidence pack (PDF)").
async fn evidence(State(st): State<AppState>, Path(number): Path<String>) -> Response {
    let back = ("/", "Back to the drops");
    let Ok(number) = dropcheck_core::domain::DropNumber::parse(&number) else {
        return notice_page(StatusCode::NOT_FOUND, "No such drop", "That is not a drop number.", back);
    };
    let started = std::time::Instant::now();
    match dropcheck_core::evidence::evidence_pdf(&st.store, &st.media, &number).await {
        Ok(pdf) => {
            tracing::info!(drop = %number, bytes = pdf.len(), ms = started.elapsed().as_millis() as u64, "evidence pack made");
            pdf_response(&number, pdf)
        }
        Err(dropcheck_core::CoreError::NotFound { .. }) => {
            notice_page(StatusCode::NOT_FOUND, "No such drop", &format!("There is no drop {number}."), back)
        }
        Err(e) => {
            tracing::error!(error = ?e, drop = %number, "evidence pack failed");
            notice_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "The evidence pack could not be made; it has been logged.",
                back,
            )
        }
    }
}

async fn attachment(State(st): State<AppState>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<AttachmentId>() else { return (StatusCode::NOT_FOUND, "no such file").into_response() };
    let a = match st.store.attachment(id).await {
        Ok(a) => a,
        Err(dropcheck_core::CoreError::NotFound { .. }) => return (StatusCode::NOT_FOUND, "no such file").into_response(),
        Err(e) => {
            tracing::error!(error = ?e, "attachment lookup failed");
            return (StatusCode::INTERNAL_SERVER_ERROR, "Internal error; it has been logged.").into_response();
        }
    };
    let Ok(path) = st.media.original_path(&a.sha256) else { return (StatusCode::NOT_FOUND, "no such file").into_response() };
    match tokio::fs::read(&path).await {
        // Always a download here, photo or not: the drop page links it as a file.
        Ok(bytes) => stored_file(bytes, &a.mime_type, &format!("dropcheck-attachment-{}", a.attachment_id), false),
        Err(e) => {
            tracing::error!(error = %e, attachment = a.attachment_id.get(), "attachment file missing");
            (StatusCode::NOT_FOUND, "the file is missing").into_response()
        }
    }
}

#[derive(Deserialize)]
struct NextQuery {
    after: Option<String>,
}

/// The drop waiting longest for review (other than the one just left), or the list if none.
async fn next_drop(State(st): State<AppState>, Query(q): Query<NextQuery>) -> Response {
    // An `after` that is no drop number excludes nothing, as no drop has it.
    let after = q.after.and_then(|a| DropNumber::parse(&a).ok());
    match st.store.next_for_review(after.as_ref()).await {
        Ok(Some(n)) => Redirect::to(&format!("/drops/{n}")).into_response(),
        // Nothing waits: the unreviewed list says so (`waiting=none`).
        Ok(None) => Redirect::to("/?status=unreviewed&waiting=none").into_response(),
        Err(e) => {
            tracing::error!(error = ?e, "next drop lookup failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn same_origin_requests_pass_and_cross_site_ones_do_not() {
        let p = "http://127.0.0.1:3000";
        assert!(same_origin(&headers(&[("sec-fetch-site", "same-origin")]), p));
        assert!(!same_origin(&headers(&[("sec-fetch-site", "cross-site"), ("origin", p)]), p));
        assert!(same_origin(&headers(&[("host", "127.0.0.1:3000"), ("origin", "http://127.0.0.1:3000")]), p));
        assert!(!same_origin(&headers(&[("host", "127.0.0.1:3000"), ("origin", "http://evil.example")]), p));
        assert!(same_origin(&headers(&[("host", "a.example"), ("referer", "http://a.example/drops/DR1")]), p));
        assert!(!same_origin(&headers(&[("host", "a.example"), ("referer", "http://a.example.evil/x")]), p));
        assert!(!same_origin(&headers(&[("host", "a.example")]), p));
    }

    #[test]
    fn mutations_must_name_our_host_and_admin_paths_are_normalised() {
        let p = "https://qa.example.com";
        assert!(host_is_ours(&headers(&[("host", "qa.example.com")]), p));
        assert!(host_is_ours(&headers(&[("host", "QA.example.com:443")]), p));
        assert!(!host_is_ours(&headers(&[("host", "rebind.attacker.example")]), p), "DNS rebinding");
        assert!(!host_is_ours(&headers(&[("host", "127.0.0.1.attacker.example:3000")]), p));
        assert!(host_is_ours(&headers(&[("host", "127.0.0.1:3000")]), p), "a proxy forwarding to our address");
        assert!(host_is_ours(&headers(&[("host", "[::1]:3000")]), p));
        assert!(!host_is_ours(&headers(&[]), p));
        assert!(host_is_ours(&headers(&[("host", "127.0.0.1:40123")]), "http://127.0.0.1"));
        for raw in ["/events/", "//events", "/EVENTS", "/%65vents", "/events//", "/settings/users/", "/Broadcasts/", "/broadcasts/3"] {
            let n = normalised_path(raw).unwrap();
            assert!(is_admin_only(&n), "{raw} → {n}");
        }
        assert!(!is_admin_only(&normalised_path("/settings/integrations/").unwrap()));
        assert_eq!(normalised_path("/drops/../events"), None);
        assert_eq!(normalised_path("/a/%2e%2e/events"), None);
        assert_eq!(normalised_path("/a%00b"), None);
        assert_eq!(normalised_path("/").as_deref(), Some("/"));
    }
}

/// Server-sent events for an open drop page: a `change` event whenever the drop's status,
/// photos, reviews or message ticks change (from any replica: the hub watches the database),
/// so the page refreshes itself without a reload.
async fn live_drop(State(st): State<AppState>, session: Session, req: Request) -> Response {
    let raw = req.uri().path().trim_start_matches("/live/drops/").to_string();
    let Ok(number) = dropcheck_core::domain::DropNumber::parse(&raw) else {
        return (StatusCode::BAD_REQUEST, "not a drop number").into_response();
    };
    live(st, session, req, move |st: AppState| {
        let number = number.clone();
        async move { st.store.drop_fingerprint(&number).await }
    })
    .await
}

/// The same for the drops list: any drop's activity (a new drop, photos, a status change).
async fn live_list(State(st): State<AppState>, session: Session, req: Request) -> Response {
    live(st, session, req, |st: AppState| async move { st.store.list_fingerprint().await.map(Some) }).await
}

/// An SSE stream that sends `change` when `fingerprint` differs from what the page was
/// rendered with. It asks only when the hub saw the database change (see `LiveHub`), ends
/// when its session signs out (or, seen from another replica, within 30 s), and counts
/// against the user's cap of open streams (429 beyond it).
async fn live<F, Fut>(st: AppState, session: Session, req: Request, fingerprint: F) -> Response
where
    F: Fn(AppState) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Option<String>, dropcheck_core::CoreError>> + Send,
{
    use axum::response::sse::{Event, KeepAlive, Sse};
    let Some(SignedIn(user)) = req.extensions().get::<SignedIn>().cloned() else {
        return (StatusCode::UNAUTHORIZED, "Your session has ended; sign in again.").into_response();
    };
    let Some(session_id) = session.id().map(|i| i.to_string()) else {
        return (StatusCode::UNAUTHORIZED, "Your session has ended; sign in again.").into_response();
    };
    let hub = st.settings.live.clone();
    let Some(slot) = hub.claim(user.user_id) else {
        tracing::info!(user_id = user.user_id.get(), "live stream refused: too many open");
        return (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, "30")], "Too many open live pages; close some tabs.")
            .into_response();
    };
    let changes = hub.subscribe();
    let ended = hub.ended_sessions();
    let first = match fingerprint(st.clone()).await {
        Ok(first) => first,
        Err(e) => {
            tracing::error!(error = ?e, "live view: the page's state cannot be read");
            return (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "5")], "Live updates are unavailable right now.")
                .into_response();
        }
    };
    struct S<F> {
        st: AppState,
        fingerprint: F,
        last: Option<String>,
        changes: tokio::sync::watch::Receiver<u64>,
        ended: tokio::sync::broadcast::Receiver<String>,
        session_id: String,
        _slot: app::ssr::LiveSlot,
    }
    let state = S { st, fingerprint, last: first, changes, ended, session_id, _slot: slot };
    let stream = futures_util::stream::unfold(state, |mut s| async move {
        let mut check = tokio::time::interval(app::ssr::LiveHub::SESSION_CHECK);
        check.tick().await; // the first tick is immediate
        loop {
            tokio::select! {
                changed = s.changes.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                    match (s.fingerprint)(s.st.clone()).await {
                        Ok(now) if now != s.last => {
                            let ev = Event::default().event("change").data(now.clone().unwrap_or_default());
                            s.last = now;
                            return Some((Ok::<_, std::convert::Infallible>(ev), s));
                        }
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(error = ?e, "live view check failed");
                            return None;
                        }
                    }
                }
                ended = s.ended.recv() => match ended {
                    Ok(id) if id == s.session_id => return None,
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(_) => return None,
                },
                _ = check.tick() => {
                    // Signed out on another replica, or expired: the session is gone.
                    match s.st.store.session_load(&s.session_id, dropcheck_core::now_ms()).await {
                        Ok(Some(_)) => {}
                        Ok(None) => return None,
                        Err(e) => {
                            // The browser reconnects, and the new stream checks the session.
                            tracing::warn!(error = ?e, "live view: session check failed; stream closed");
                            return None;
                        }
                    }
                }
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default()).into_response()
}

/// Browser security headers on every response (pages, API, files, errors): no sniffing, no
/// framing, the referrer kept to our own origin, HSTS when served over https, and a strict
/// Content-Security-Policy where the page did not set its own (Leptos pages set one with
/// their nonce, see `app::ssr::set_page_csp`).
pub async fn security_headers(State(st): State<AppState>, req: Request, next: Next) -> Response {
    use axum::http::HeaderValue;
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        if let Ok(v) = HeaderValue::from_str(&app::ssr::content_security_policy(None)) {
            h.insert(header::CONTENT_SECURITY_POLICY, v);
        }
    }
    if st.settings.public_url.starts_with("https://") {
        h.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000; includeSubDomains"));
    }
    res
}

/// Text from outside is cleaned of NUL characters before anything reads it: PostgreSQL
/// cannot store them in text, so a NUL in a search, a form field or a JSON string would be a
/// database error (a 500) instead of the text the user meant. Query strings, form posts and
/// JSON bodies are rewritten without them; bodies are read at most up to the API's limit.
/// Webhooks are left alone (their signatures cover the raw bytes; their parsers clean the
/// text), and so are uploads (bytes, not text).
pub async fn clean_input(mut req: Request, next: Next) -> Response {
    if let Some(q) = req.uri().query().filter(|q| contains_nul(q.as_bytes())) {
        let cleaned: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form_urlencoded::parse(q.as_bytes()).map(|(k, v)| (k.replace('\0', ""), v.replace('\0', ""))))
            .finish();
        let path = req.uri().path();
        if let Ok(uri) = format!("{path}?{cleaned}").parse() {
            *req.uri_mut() = uri;
        }
    }
    let path = req.uri().path();
    if path.starts_with("/webhooks/") {
        return next.run(req).await;
    }
    let ct = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_ascii_lowercase();
    let form = ct.starts_with("application/x-www-form-urlencoded");
    let json = ct.starts_with("application/json");
    if !(form || json) {
        return next.run(req).await;
    }
    let (mut parts, body) = req.into_parts();
    let limit = crate::API_BODY_LIMIT.max(crate::FORM_BODY_LIMIT);
    let Ok(bytes) = axum::body::to_bytes(body, limit).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "The request body is larger than this server accepts.").into_response();
    };
    let bytes = if !contains_nul(&bytes) {
        bytes
    } else if form {
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form_urlencoded::parse(&bytes).map(|(k, v)| (k.replace('\0', ""), v.replace('\0', ""))))
            .finish()
            .into()
    } else {
        match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Ok(mut v) => {
                strip_nul(&mut v);
                serde_json::to_vec(&v).map(Into::into).unwrap_or(bytes)
            }
            Err(_) => bytes, // malformed: the handler says so
        }
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

/// Whether raw, percent-encoded or JSON-escaped NUL may be in `b` (a cheap first look).
fn contains_nul(b: &[u8]) -> bool {
    b.contains(&0)
        || b.windows(3).any(|w| w[0] == b'%' && w[1] == b'0' && w[2] == b'0')
        || b.windows(6).any(|w| w.eq_ignore_ascii_case(b"\\u0000"))
}

fn strip_nul(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::String(s) if s.contains('\0') => *s = s.replace('\0', ""),
        Value::Array(items) => items.iter_mut().for_each(strip_nul),
        Value::Object(map) => {
            if map.keys().any(|k| k.contains('\0')) {
                *map = std::mem::take(map).into_iter().map(|(k, v)| (k.replace('\0', ""), v)).collect();
            }
            map.values_mut().for_each(strip_nul);
        }
        _ => {}
    }
}
