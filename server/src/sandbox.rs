//! The built-in WhatsApp simulator (SPEC 4.3). The `/sandbox` page (in the app crate) shows
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

pub fn router(messaging: Arc<Messaging>) -> Router<AppState> {
    let limit = (messaging.max_media_bytes as usize).saturating_mul(MAX_FILES).min(256 << 20) + (1 << 20);
    Router::new()
        .route("/sandbox/send", post(send).layer(DefaultBodyLimit::max(limit)))
        .route("/sandbox/media/{sha}", get(media))
        .layer(Extension(messaging))
}

#[derive(Default)]
struct SendForm {
    phone: String,
    body: String,
    photos: String,
    /// Uploaded files: (content type, bytes).
    files: Vec<(String, Vec<u8>)>,
}

/// Reads the form, plain (`application/x-www-form-urlencoded`) or with files (multipart).
async fn read_form(req: Request, max_file: u64) -> Result<SendForm, Response> {
    let is_multipart =
        req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|c| c.starts_with("multipart/form-data"));
    if !is_multipart {
        #[derive(Deserialize)]
        struct Plain {
            phone: String,
            #[serde(default)]
            body: String,
            #[serde(default)]
            photos: String,
        }
        let Form(p) =
            Form::<Plain>::from_request(req, &()).await.map_err(|e| page(StatusCode::UNPROCESSABLE_ENTITY, "Not sent", &e.body_text()))?;
        return Ok(SendForm { phone: p.phone, body: p.body, photos: p.photos, files: vec![] });
    }
    let mut mp = Multipart::from_request(req, &()).await.map_err(|e| page(StatusCode::BAD_REQUEST, "Not sent", &e.body_text()))?;
    let mut f = SendForm::default();
    let bad = |e: axum::extract::multipart::MultipartError| page(StatusCode::BAD_REQUEST, "Not sent", &e.body_text());
    while let Some(field) = mp.next_field().await.map_err(bad)? {
        match field.name().unwrap_or_default() {
            "phone" => f.phone = field.text().await.map_err(bad)?,
            "body" => f.body = field.text().await.map_err(bad)?,
            "photos" => f.photos = field.text().await.map_err(bad)?,
            "files" => {
                let ct = field.content_type().unwrap_or("application/octet-stream").to_string();
                let bytes = field.bytes().await.map_err(bad)?;
                if bytes.is_empty() {
                    continue; // an empty file input
                }
                if bytes.len() as u64 > max_file {
                    return Err(page(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "File too large",
                        &format!("Each file can be at most {} MB.", max_file >> 20),
                    ));
                }
                if f.files.len() == MAX_FILES {
                    return Err(page(StatusCode::UNPROCESSABLE_ENTITY, "Too many files", "Attach at most 12 files."));
                }
                f.files.push((ct, bytes.to_vec()));
            }
            _ => {}
        }
    }
    Ok(f)
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
    let f = match read_form(req, m.max_media_bytes).await {
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
    for (ct, bytes) in f.files {
        let is_photo = matches!(ct.as_str(), "image/jpeg" | "image/png");
        let stored = if is_photo { st.media.store_image(bytes).await } else { st.media.store_file(bytes, &ct).await };
        match stored {
            Ok(s) => media.push((
                format!("{}/sandbox/media/{}?type={}", m.self_url(), s.sha256, s.mime_type.replace('+', "%2B").replace('/', "%2F")),
                s.mime_type,
            )),
            Err(dropcheck_core::CoreError::Input(e)) => return page(StatusCode::UNPROCESSABLE_ENTITY, "Not a usable file", &e.message),
            Err(e) => {
                tracing::error!(error = ?e, "sandbox upload could not be stored");
                return page(StatusCode::INTERNAL_SERVER_ERROR, "File not stored", "The file could not be stored; see the server log.");
            }
        }
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
        let jpeg = demo_photo(&label, (i + 1) as i64, step_name, variant);
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
        media.push((format!("{}/sandbox/media/{}", m.self_url(), stored.sha256), "image/jpeg".into()));
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

/// The simulated provider's media URLs: the generated photos, by digest (sandbox mode only).
#[derive(Deserialize)]
struct MediaQuery {
    #[serde(rename = "type")]
    content_type: Option<String>,
}

async fn media(
    State(st): State<AppState>,
    Extension(m): Extension<Arc<Messaging>>,
    Path(sha): Path<String>,
    Query(q): Query<MediaQuery>,
) -> Response {
    if !matches!(*m.provider(), ProviderConfig::Sandbox { .. }) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let Ok(path) = st.media.original_path(&sha) else { return StatusCode::NOT_FOUND.into_response() };
    // The type the upload declared (checked again when stored on arrival); JPEG by default.
    let ct = q.content_type.as_deref().and_then(dropcheck_core::media::safe_content_type).unwrap_or_else(|| "image/jpeg".into());
    match tokio::fs::read(&path).await {
        Ok(bytes) => ([(header::CONTENT_TYPE, ct), (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string())], bytes).into_response(),
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}
