//! The built-in WhatsApp simulator (SPEC 4.3). The `/sandbox` page (in the app crate) shows
//! a phone's conversation; its form posts here. Each message becomes a Twilio-format webhook
//! request, signed with the sandbox's token, sent over HTTP to this server's own
//! `/webhooks/twilio`: the sandbox exercises the real verification, storage, processing
//! and media download. Outbound messages reach the simulated phone through the outbox
//! (the sandbox adapter records them as delivered).

use crate::config::ProviderConfig;
use crate::web::html_escape;
use crate::workers::Messaging;
use app::ssr::AppState;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
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

pub fn router(messaging: Arc<Messaging>) -> Router<AppState> {
    Router::new().route("/sandbox/send", post(send)).route("/sandbox/media/{sha}", get(media)).layer(Extension(messaging))
}

#[derive(Deserialize)]
struct SendForm {
    phone: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    photos: String,
}

fn page(status: StatusCode, title: &str, text: &str) -> Response {
    let body = format!(
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title} · Dropcheck</title>
<link rel="stylesheet" href="/pkg/dropcheck.css"></head>
<body class="bg-slate-50 text-slate-900"><main class="mx-auto mt-24 max-w-md text-center">
<h1 class="text-2xl font-semibold">{title}</h1><p class="mt-2 text-slate-600">{}</p>
<a href="/sandbox" class="mt-4 inline-block text-blue-700 underline">Back to the sandbox</a></main></body></html>"#,
        html_escape(text)
    );
    (status, Html(body)).into_response()
}

async fn send(State(st): State<AppState>, Extension(m): Extension<Arc<Messaging>>, Form(f): Form<SendForm>) -> Response {
    let ProviderConfig::Sandbox { signing_token } = &m.provider else {
        return page(StatusCode::NOT_FOUND, "Sandbox off", "The sandbox works only while no WhatsApp provider is configured.");
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
    let body = f.body.trim().to_string();
    if body.is_empty() && photos == 0 {
        return Redirect::to(&format!("/sandbox?phone={}", phone.as_str().replace('+', "%2B"))).into_response();
    }
    let label = find_drop_number(&body).map(|d| d.as_str().to_string()).unwrap_or_else(|| "SANDBOX".into());
    // One webhook per message, in order, as a phone sends them: a text, or one per photo
    // (the text, if any, is the first photo's caption).
    let mut messages: Vec<Vec<(String, String)>> = vec![];
    let from = format!("whatsapp:{}", phone.as_str());
    let sid = || format!("SM{}", dropcheck_core::auth::random_token(16));
    if photos == 0 {
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
        let variant = rand::random::<u32>() % 1000;
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
        messages.push(vec![
            ("MessageSid".into(), format!("MM{}", dropcheck_core::auth::random_token(16))),
            ("From".into(), from.clone()),
            ("To".into(), SANDBOX_NUMBER.into()),
            ("Body".into(), if i == 0 { body.clone() } else { String::new() }),
            ("NumMedia".into(), "1".into()),
            ("MediaUrl0".into(), format!("{}/sandbox/media/{}", m.self_url(), stored.sha256)),
            ("MediaContentType0".into(), "image/jpeg".into()),
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
async fn media(State(st): State<AppState>, Extension(m): Extension<Arc<Messaging>>, Path(sha): Path<String>) -> Response {
    if !matches!(m.provider, ProviderConfig::Sandbox { .. }) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let Ok(path) = st.media.original_path(&sha) else { return StatusCode::NOT_FOUND.into_response() };
    match tokio::fs::read(&path).await {
        Ok(bytes) => ([(header::CONTENT_TYPE, "image/jpeg")], bytes).into_response(),
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}
