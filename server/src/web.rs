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
use dropcheck_core::domain::Role;
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
}

/// Paths anyone may reach; everything else needs a signed-in user.
fn is_public(path: &str) -> bool {
    matches!(path, "/login" | "/setup" | "/health" | "/db/test" | "/favicon.svg" | "/rpc/login" | "/rpc/setup" | "/rpc/logout" | "/send")
        || path.starts_with("/pkg/")
        || path.starts_with("/sandbox/media/")
        || path.starts_with("/api/")
        || path.starts_with("/webhooks/")
}

fn is_admin_only(path: &str) -> bool {
    // Every user links their own phone under Settings → Integrations.
    (path.starts_with("/settings/") && path != "/settings/integrations")
        || path == "/events"
        || matches!(
            path,
            "/rpc/events_page"
                | "/rpc/reprocess_event"
                | "/rpc/projects_data"
                | "/rpc/create_project"
                | "/rpc/save_project"
                | "/rpc/users_data"
                | "/rpc/add_user"
                | "/rpc/set_user_role"
                | "/rpc/delete_user"
                | "/rpc/templates_page"
                | "/rpc/preview_template"
                | "/rpc/save_template"
                | "/rpc/api_keys_data"
                | "/rpc/create_api_key"
                | "/rpc/revoke_api_key"
        )
}

/// Sends visitors without a session to sign in (or to `/setup` on a fresh install), keeps
/// reviewers out of admin pages (403), and keeps signed-in users off the sign-in page.
pub async fn gate(State(st): State<AppState>, session: Session, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
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
    if is_public(&path) {
        return next.run(req).await;
    }
    match user {
        Some(u) if is_admin_only(&path) && u.role() != Role::Admin => {
            tracing::info!(user_id = u.user_id, path = %path, "admin page refused");
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
    let seen: Option<i64> = session.get(SEEN_AT).await.ok().flatten();
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

/// CSRF defence for cookie-authenticated requests (OWASP): a state-changing request must come
/// from our own pages, shown by `Sec-Fetch-Site: same-origin`, or, from browsers without it,
/// by an `Origin` (else `Referer`) of our own origin. API and webhook routes carry no cookies'
/// authority (API keys, signatures) and are exempt.
pub async fn csrf(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let path = req.uri().path();
    let exempt = path.starts_with("/api/") || path.starts_with("/webhooks/") || path == "/send";
    if safe || exempt || same_origin(req.headers(), &st.settings.public_url) {
        return next.run(req).await;
    }
    tracing::warn!(path = %path, "cross-site request refused");
    (StatusCode::FORBIDDEN, "Cross-site request refused.").into_response()
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
    let id: i64 = raw.parse().map_err(|_| (StatusCode::BAD_REQUEST, "not a photo id").into_response())?;
    st.store.photo(id).await.map_err(|e| match e {
        dropcheck_core::CoreError::NotFound { .. } => (StatusCode::NOT_FOUND, "no such photo").into_response(),
        e => {
            tracing::error!(error = ?e, "photo lookup failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    })
}

async fn send_file(path: std::path::PathBuf, mime: &str) -> Response {
    match tokio::fs::read(&path).await {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, mime.to_string()),
                // Content-addressed: the bytes behind a photo never change.
                (header::CACHE_CONTROL, "private, max-age=31536000, immutable".to_string()),
            ],
            Body::from(bytes),
        )
            .into_response(),
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
        Ok(path) => send_file(path, &p.mime_type).await,
        Err(_) => (StatusCode::NOT_FOUND, "no such photo").into_response(),
    }
}

async fn thumbnail(State(st): State<AppState>, Path(id): Path<String>) -> Response {
    let p = match load_photo(&st, &id).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    match st.media.thumbnail(&p.sha256).await {
        Ok(path) => send_file(path, "image/jpeg").await,
        Err(e) => {
            tracing::warn!(error = ?e, photo_id = p.photo_id, "thumbnail unavailable");
            (StatusCode::NOT_FOUND, "thumbnail unavailable").into_response()
        }
    }
}

/// A file a contractor sent that is not a checklist photo. Always a download (never shown
/// inline, never sniffed), since its content type comes from outside.
async fn attachment(State(st): State<AppState>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<i64>() else { return (StatusCode::NOT_FOUND, "no such file").into_response() };
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
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, a.mime_type.clone()),
                (header::CONTENT_DISPOSITION, format!("attachment; filename=\"dropcheck-attachment-{}\"", a.attachment_id)),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
                (header::CACHE_CONTROL, "private, max-age=31536000, immutable".to_string()),
            ],
            Body::from(bytes),
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, attachment = a.attachment_id, "attachment file missing");
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
    let after = q.after.map(|a| a.trim().to_ascii_uppercase());
    match st.store.next_for_review(after.as_deref()).await {
        Ok(Some(n)) => Redirect::to(&format!("/drops/{n}")).into_response(),
        Ok(None) => Redirect::to("/?status=unreviewed").into_response(),
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
}

/// Server-sent events for an open drop page: a `change` event whenever the drop's status,
/// photos, reviews or message ticks change (from any replica: it watches the database), so
/// the page refreshes itself without a reload.
async fn live_drop(State(st): State<AppState>, Path(number): Path<String>) -> Response {
    let Ok(number) = dropcheck_core::domain::DropNumber::parse(&number) else {
        return (StatusCode::BAD_REQUEST, "not a drop number").into_response();
    };
    live(st, move |st: AppState| {
        let number = number.clone();
        async move { st.store.drop_fingerprint(&number).await }
    })
    .await
}

/// The same for the drops list: any drop's activity (a new drop, photos, a status change).
async fn live_list(State(st): State<AppState>) -> Response {
    live(st, |st: AppState| async move { st.store.list_fingerprint().await.map(Some) }).await
}

/// An SSE stream that polls `fingerprint` once a second and sends `change` when it differs.
async fn live<F, Fut>(st: AppState, fingerprint: F) -> Response
where
    F: Fn(AppState) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Option<String>, dropcheck_core::CoreError>> + Send,
{
    use axum::response::sse::{Event, KeepAlive, Sse};
    let first = fingerprint(st.clone()).await.ok().flatten();
    let stream = futures_util::stream::unfold((st, fingerprint, first), |(st, fingerprint, last)| async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
            match fingerprint(st.clone()).await {
                Ok(now) if now != last => {
                    let ev = Event::default().event("change").data(now.clone().unwrap_or_default());
                    return Some((Ok::<_, std::convert::Infallible>(ev), (st, fingerprint, now)));
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = ?e, "live view poll failed");
                    return None;
                }
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default()).into_response()
}
