//! The built-in WhatsApp simulator. The `/sandbox` page (in the app crate) shows
//! a phone's conversation; its form posts here. Each message becomes a Twilio-format webhook
//! request, signed with the sandbox's token, sent over HTTP to this server's own
//! `/webhooks/twilio`: the sandbox exercises the real verification, storage, processing
//! and media download. Outbound messages reach the simulated phone through the outbox
//! (the sandbox adapter records them as delivered).

use crate::config::ProviderConfig;
use crate::web::notice_page;
use crate::workers::Messaging;
use app::ssr::AppState;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use dropcheck_core::conversation::find_drop_number;
use dropcheck_core::domain::{Phone, DEFAULT_CHECKLIST};
use dropcheck_core::media::demo_photo;
use dropcheck_core::providers::twilio_signature;
use serde::Deserialize;
use std::sync::Arc;

/// The simulated business number the contractor writes to.
const SANDBOX_NUMBER: &str = "whatsapp:+14155238886";

/// Uploads from the simulated phone: up to 12 files, each at most the media limit.
const MAX_FILES: usize = 12;

/// The plain (no files) form: a phone number, a short text and a photo count.
const MAX_PLAIN_FORM: usize = 8 << 10;

/// The largest multipart body: twelve files at the media limit and the text fields. Read as
/// a stream, so a body only ever occupies what its files really are, each checked as it
/// arrives.
fn max_multipart(max_file: u64) -> usize {
    (max_file as usize).saturating_mul(MAX_FILES).min(256 << 20) + (64 << 10)
}

pub fn router(messaging: Arc<Messaging>) -> Router<AppState> {
    let limit = max_multipart(messaging.max_media_bytes);
    Router::new()
        .route("/sandbox/send", post(send).layer(DefaultBodyLimit::max(limit)))
        .route("/sandbox/media/{sha}", get(media))
        .layer(Extension(messaging))
}

/// The signature a sandbox media URL carries: only URLs this server minted (for a photo it
/// generated or a file a signed-in user uploaded) are served, and only with the type it
/// minted them with.
fn media_signature(token: &str, sha: &str, content_type: &str) -> String {
    dropcheck_core::auth::sign(token.as_bytes(), &format!("sandbox-media\n{sha}\n{content_type}"))
}

fn media_url(m: &Messaging, token: &str, sha: &str, content_type: &str) -> String {
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!("{}/sandbox/media/{sha}?type={}&sig={}", m.self_url(), enc(content_type), media_signature(token, sha, content_type))
}

#[derive(Default)]
struct SendForm {
    phone: String,
    body: String,
    photos: String,
    /// `dark` or `blurred`: the last generated photo is spoiled that way.
    spoil: String,
    /// Uploaded files, stored as each arrived (one in memory at a time).
    files: Vec<dropcheck_core::media::StoredMedia>,
}

/// Reads the form, plain (`application/x-www-form-urlencoded`) or with files (multipart).
async fn read_form(st: &AppState, req: Request, max_file: u64) -> Result<SendForm, Response> {
    let is_multipart =
        req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|c| c.starts_with("multipart/form-data"));
    let too_large = || page(StatusCode::PAYLOAD_TOO_LARGE, "Too large", "That form is larger than the sandbox accepts.");
    if !is_multipart {
        // A few KB at most: read no further than that, whatever the body claims.
        let (parts, body) = req.into_parts();
        let bytes = axum::body::to_bytes(body, MAX_PLAIN_FORM).await.map_err(|_| too_large())?;
        let req = Request::from_parts(parts, axum::body::Body::from(bytes));
        #[derive(Deserialize)]
        struct Plain {
            phone: String,
            #[serde(default)]
            body: String,
            #[serde(default)]
            photos: String,
            #[serde(default)]
            spoil: String,
        }
        let Form(p) =
            Form::<Plain>::from_request(req, &()).await.map_err(|e| page(StatusCode::UNPROCESSABLE_ENTITY, "Not sent", &e.body_text()))?;
        return Ok(SendForm { phone: p.phone, body: p.body, photos: p.photos, spoil: p.spoil, files: vec![] });
    }
    let mut mp = Multipart::from_request(req, &()).await.map_err(|e| page(StatusCode::BAD_REQUEST, "Not sent", &e.body_text()))?;
    let mut f = SendForm::default();
    let bad = |e: axum::extract::multipart::MultipartError| page(StatusCode::BAD_REQUEST, "Not sent", &e.body_text());
    while let Some(field) = mp.next_field().await.map_err(bad)? {
        match field.name().unwrap_or_default() {
            name @ ("phone" | "body" | "photos" | "spoil") => {
                let name = name.to_string();
                let text = read_field(field, MAX_PLAIN_FORM as u64).await?.ok_or_else(too_large)?;
                let text =
                    String::from_utf8(text).map_err(|_| page(StatusCode::BAD_REQUEST, "Not sent", "The form's text is not UTF-8."))?;
                match name.as_str() {
                    "phone" => f.phone = text,
                    "body" => f.body = text,
                    "spoil" => f.spoil = text,
                    _ => f.photos = text,
                }
            }
            "files" => {
                let ct = field.content_type().unwrap_or("application/octet-stream").to_string();
                let Some(bytes) = read_field(field, max_file).await? else {
                    return Err(page(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "File too large",
                        &format!("Each file can be at most {} MB.", max_file >> 20),
                    ));
                };
                if bytes.is_empty() {
                    continue; // an empty file input
                }
                if f.files.len() == MAX_FILES {
                    return Err(page(StatusCode::UNPROCESSABLE_ENTITY, "Too many files", "Attach at most 12 files."));
                }
                let is_photo = matches!(ct.as_str(), "image/jpeg" | "image/png");
                let stored = if is_photo { st.media.store_image(bytes).await } else { st.media.store_file(bytes, &ct).await };
                match stored {
                    Ok(s) => f.files.push(s),
                    Err(dropcheck_core::CoreError::Input(e)) => {
                        return Err(page(StatusCode::UNPROCESSABLE_ENTITY, "Not a usable file", &e.message))
                    }
                    Err(e) => {
                        tracing::error!(error = ?e, "sandbox upload could not be stored");
                        return Err(page(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "File not stored",
                            "The file could not be stored; see the server log.",
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    Ok(f)
}

/// A multipart field read chunk by chunk; `None` as soon as it passes `max` bytes.
async fn read_field(mut field: axum::extract::multipart::Field<'_>, max: u64) -> Result<Option<Vec<u8>>, Response> {
    let mut out = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(|e| page(StatusCode::BAD_REQUEST, "Not sent", &e.body_text()))? {
        if (out.len() + chunk.len()) as u64 > max {
            return Ok(None);
        }
        out.extend_from_slice(&chunk);
    }
    Ok(Some(out))
}

fn page(status: StatusCode, title: &str, text: &str) -> Response {
    notice_page(status, title, text, ("/sandbox", "Back to the sandbox"))
}

async fn send(State(st): State<AppState>, Extension(m): Extension<Arc<Messaging>>, req: Request) -> Response {
    let active = m.provider();
    let ProviderConfig::Sandbox { signing_token } = &*active else {
        return page(
            StatusCode::NOT_FOUND,
            "Sandbox off",
            "The sandbox works only while it is the active provider (Settings → Integrations).",
        );
    };
    let f = match read_form(&st, req, m.max_media_bytes).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let phone = match Phone::parse(&f.phone) {
        Ok(p) => p,
        Err(e) => return page(StatusCode::UNPROCESSABLE_ENTITY, "Not a phone number", &e.message),
    };
    let photos: usize = match f.photos.trim() {
        "" => 0,
        n => match n.parse::<usize>() {
            Ok(n) if n <= 12 => n,
            _ => return page(StatusCode::UNPROCESSABLE_ENTITY, "Too many photos", "Attach from 0 to 12 photos."),
        },
    };
    // (darken by, blur sigma) for the last generated photo.
    let spoil = match f.spoil.trim() {
        "" | "none" => None,
        "dark" => Some((4, 0.0)),
        "blurred" => Some((1, 6.0)),
        other => return page(StatusCode::UNPROCESSABLE_ENTITY, "Not sent", &format!("'{other}' is not dark or blurred.")),
    };
    if photos + f.files.len() > MAX_FILES {
        return page(StatusCode::UNPROCESSABLE_ENTITY, "Too many photos", "Send at most 12 photos and files at a time.");
    }
    let body = f.body.trim().to_string();
    if body.is_empty() && photos == 0 && f.files.is_empty() {
        return Redirect::to(&format!("/sandbox?phone={}", phone.as_str().replace('+', "%2B"))).into_response();
    }
    let label = find_drop_number(&body).map(|d| d.as_str().to_string()).unwrap_or_else(|| "SANDBOX".into());
    // One webhook per message, in order, as a phone sends them: a text, or one per photo
    // (the text, if any, is the first photo's caption).
    let mut messages: Vec<Vec<(String, String)>> = vec![];
    let from = format!("whatsapp:{}", phone.as_str());
    let sid = || format!("SM{}", dropcheck_core::auth::random_token(16));
    // Uploaded files first (as the phone would send what was picked), then generated photos.
    let mut media: Vec<(String, String)> = vec![]; // (URL, content type)
    for s in f.files {
        media.push((media_url(&m, signing_token, &s.sha256, &s.mime_type), s.mime_type));
    }
    if photos == 0 && media.is_empty() {
        messages.push(vec![
            ("MessageSid".into(), sid()),
            ("From".into(), from.clone()),
            ("To".into(), SANDBOX_NUMBER.into()),
            ("Body".into(), body.clone()),
            ("NumMedia".into(), "0".into()),
            ("ProfileName".into(), "Sandbox contractor".into()),
        ]);
    }
    for i in 0..photos {
        let step_name = DEFAULT_CHECKLIST.get(i).map(|(n, _)| *n).unwrap_or("Photo");
        // Random, so a photo sent again is a new photo (not a duplicate of an earlier one).
        let variant = rand::random::<u32>();
        let mut jpeg = demo_photo(&label, (i + 1) as i64, step_name, variant);
        if let Some((darken, blur)) = spoil.filter(|_| i + 1 == photos) {
            match dropcheck_core::media::spoiled_photo(&jpeg, darken, blur) {
                Ok(spoiled) => jpeg = spoiled,
                Err(e) => tracing::error!(error = ?e, "sandbox photo could not be spoiled: sent as it is"),
            }
        }
        let stored = match st.media.store_image(jpeg).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = ?e, "sandbox photo could not be stored");
                return page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Photo not stored",
                    "The generated photo could not be stored; see the server log.",
                );
            }
        };
        media.push((media_url(&m, signing_token, &stored.sha256, "image/jpeg"), "image/jpeg".into()));
    }
    for (i, (url, ct)) in media.into_iter().enumerate() {
        messages.push(vec![
            ("MessageSid".into(), format!("MM{}", dropcheck_core::auth::random_token(16))),
            ("From".into(), from.clone()),
            ("To".into(), SANDBOX_NUMBER.into()),
            ("Body".into(), if i == 0 { body.clone() } else { String::new() }),
            ("NumMedia".into(), "1".into()),
            ("MediaUrl0".into(), url),
            ("MediaContentType0".into(), ct),
            ("ProfileName".into(), "Sandbox contractor".into()),
        ]);
    }
    let signed_url = format!("{}/webhooks/twilio", m.public_url);
    for params in messages {
        let signature = twilio_signature(signing_token, &signed_url, &params);
        let res =
            m.client.post(format!("{}/webhooks/twilio", m.self_url())).header("X-Twilio-Signature", signature).form(&params).send().await;
        match res {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => {
                tracing::error!(status = r.status().as_u16(), "the sandbox's webhook request was refused");
                return page(StatusCode::BAD_GATEWAY, "Not delivered", &format!("The webhook answered {}.", r.status()));
            }
            Err(e) => {
                tracing::error!(error = %e, "the sandbox could not reach its own webhook");
                return page(StatusCode::BAD_GATEWAY, "Not delivered", "The sandbox could not reach this server's webhook.");
            }
        }
    }
    Redirect::to(&format!("/sandbox?phone={}", phone.as_str().replace('+', "%2B"))).into_response()
}

/// The simulated provider's media URLs (sandbox mode only): a file the sandbox minted a URL
/// for, with the type it was minted with. A photo is served as one only if its bytes are
/// JPEG or PNG; anything else is an inert download (see `web::stored_file`).
#[derive(Deserialize)]
struct MediaQuery {
    #[serde(rename = "type")]
    content_type: Option<String>,
    sig: Option<String>,
}

async fn media(
    State(st): State<AppState>,
    Extension(m): Extension<Arc<Messaging>>,
    Path(sha): Path<String>,
    Query(q): Query<MediaQuery>,
) -> Response {
    let active = m.provider();
    let ProviderConfig::Sandbox { signing_token } = &*active else { return StatusCode::NOT_FOUND.into_response() };
    let (Some(ct), Some(sig)) = (q.content_type.as_deref(), q.sig.as_deref()) else { return StatusCode::NOT_FOUND.into_response() };
    if !dropcheck_core::auth::secret_eq(&media_signature(signing_token, &sha, ct), sig) {
        tracing::info!(sha = ?sha, "sandbox media URL with a wrong signature refused");
        return StatusCode::NOT_FOUND.into_response();
    }
    let Ok(path) = st.media.original_path(&sha) else { return StatusCode::NOT_FOUND.into_response() };
    let photo = matches!(ct, "image/jpeg" | "image/png");
    match tokio::fs::read(&path).await {
        Ok(bytes) => crate::web::stored_file(bytes, ct, &format!("sandbox-{}", &sha[..12]), photo),
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}
