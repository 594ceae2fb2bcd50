//! The contact pages' form posts, beside their Leptos pages: a contact's profile saved
//! (`/contacts/{phone}/save`), custom attributes added and removed, and the CSV import — the
//! file upload (multipart), running it with the mapping the page's form holds, the rejected
//! rows' download. Plain forms: they work without JavaScript. Admins only (checked here; the
//! gate also keeps reviewers off the import and attribute paths).

use app::ssr::{session_user, AppState};
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use dropcheck_core::contacts::import::ImportMapping;
use dropcheck_core::contacts::{AttrType, AttributeDef, Birthday, ConsentStatus, ContactUpdate};
use dropcheck_core::domain::{Phone, Role};
use dropcheck_core::CoreError;
use tower_sessions::Session;

use crate::web::notice_page;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/contacts/upload", post(upload).layer(DefaultBodyLimit::max(crate::api::IMPORT_BODY_LIMIT)))
        .route("/contacts/import/{id}/run", post(run))
        .route("/contacts/import/{id}/rejected.csv", get(rejected))
        .route("/contacts/{phone}/save", post(save))
        .route("/contacts/attributes", post(add_attribute))
        .route("/contacts/attributes/{key}/delete", post(delete_attribute))
}

/// Back to a page with `?error=` (the page shows it) or `?saved=1`.
fn back_to(page: &str, outcome: Result<(), String>) -> Response {
    let sep = if page.contains('?') { '&' } else { '?' };
    match outcome {
        Ok(()) => Redirect::to(&format!("{page}{sep}saved=1")).into_response(),
        Err(e) => {
            tracing::info!(error = %e, page, "contact change refused");
            let q: String = form_urlencoded::byte_serialize(e.as_bytes()).collect();
            Redirect::to(&format!("{page}{sep}error={q}")).into_response()
        }
    }
}

fn message(e: CoreError) -> String {
    crate::web::refusal_text(e, "contact change")
}

/// `POST /contacts/{phone}/save` (the contact page's form): name, consent, tags, birthday,
/// time zone and `attr.KEY` for each attribute (blank clears).
async fn save(State(st): State<AppState>, session: Session, Path(phone): Path<String>, body: String) -> Response {
    let by = match admin(&st, &session).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Ok(phone) = Phone::parse(&phone) else { return refused(StatusCode::NOT_FOUND, "No such contact", "That is not a phone number.") };
    let page = format!("/contacts/{}", form_urlencoded::byte_serialize(phone.as_str().as_bytes()).collect::<String>());
    let pairs = dropcheck_core::contacts::import::form_pairs(&body);
    let outcome = async {
        let u = contact_update(&pairs).map_err(|e| e.message)?;
        st.store.contact(&phone).await.map_err(message)?;
        st.store.save_contact(&phone, &u, &by).await.map(|_| ()).map_err(message)
    }
    .await;
    back_to(&page, outcome)
}

/// The contact form's fields as a change (a field left out of the form changes nothing).
fn contact_update(pairs: &[(String, String)]) -> Result<ContactUpdate, dropcheck_core::InputError> {
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.trim().to_string());
    let mut u = ContactUpdate { name: get("name"), ..Default::default() };
    if let Some(c) = get("consent") {
        u.consent = Some(ConsentStatus::parse(&c)?);
    }
    if let Some(t) = get("tags") {
        u.tags = Some(t.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_string).collect());
    }
    if let Some(b) = get("birthday") {
        u.birthday = Some(if b.is_empty() { None } else { Some(Birthday::parse_text(&b)?) });
    }
    if let Some(tz) = get("time_zone") {
        u.time_zone = Some(if tz.is_empty() { None } else { Some(tz) });
    }
    for (k, v) in pairs {
        if let Some(key) = k.strip_prefix("attr.") {
            let v = v.trim();
            u.attributes.insert(key.to_string(), if v.is_empty() { serde_json::Value::Null } else { v.into() });
        }
    }
    Ok(u)
}

/// `POST /contacts/attributes`: key, label, type, options (comma-separated).
async fn add_attribute(State(st): State<AppState>, session: Session, body: String) -> Response {
    if let Err(r) = admin(&st, &session).await {
        return r;
    }
    let pairs = dropcheck_core::contacts::import::form_pairs(&body);
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.trim().to_string()).unwrap_or_default();
    let outcome = async {
        let kind = AttrType::parse(&get("type")).map_err(|e| e.message)?;
        let options = get("options").split(',').map(str::trim).filter(|o| !o.is_empty()).map(str::to_string).collect();
        let def = AttributeDef { key: get("key"), label: get("label"), kind, options };
        st.store.save_attribute_def(&def).await.map(|_| ()).map_err(message)
    }
    .await;
    back_to("/contacts", outcome)
}

/// `POST /contacts/attributes/{key}/delete`
async fn delete_attribute(State(st): State<AppState>, session: Session, Path(key): Path<String>) -> Response {
    if let Err(r) = admin(&st, &session).await {
        return r;
    }
    back_to("/contacts", st.store.delete_attribute_def(&key).await.map_err(message))
}

const BACK: (&str, &str) = ("/contacts/import", "Back to the import");

fn refused(status: StatusCode, title: &str, why: &str) -> Response {
    tracing::info!(error = %why, "contact import refused");
    notice_page(status, title, why, BACK)
}

fn failed(e: CoreError) -> Response {
    match e {
        CoreError::Input(e) => refused(StatusCode::UNPROCESSABLE_ENTITY, "Not imported", &e.message),
        CoreError::NotFound { what, .. } => refused(StatusCode::NOT_FOUND, "No such import", &format!("There is {what}.")),
        CoreError::Conflict { message, .. } => refused(StatusCode::CONFLICT, "Not yet", &message),
        e => {
            tracing::error!(error = ?e, "contact import failed");
            notice_page(StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong", "The import failed; it has been logged.", BACK)
        }
    }
}

/// The signed-in admin's email (the gate lets only admins through; this names them).
async fn admin(st: &AppState, session: &Session) -> Result<String, Response> {
    match session_user(session, &st.store).await {
        Ok(Some(u)) if u.role() == Role::Admin => Ok(u.email.to_string()),
        Ok(_) => Err(refused(StatusCode::FORBIDDEN, "Admins only", "Importing contacts is for admins.")),
        Err(e) => Err(failed(e)),
    }
}

/// `POST /contacts/upload` (multipart `file`): keeps the file and opens its mapping step.
async fn upload(State(st): State<AppState>, session: Session, req: Request) -> Response {
    let by = match admin(&st, &session).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let mut mp = match Multipart::from_request(req, &()).await {
        Ok(m) => m,
        Err(e) => return refused(StatusCode::BAD_REQUEST, "Not uploaded", &e.body_text()),
    };
    loop {
        let field = match mp.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => return refused(StatusCode::UNPROCESSABLE_ENTITY, "Not uploaded", "Choose a CSV file to import."),
            Err(e) => return refused(StatusCode::BAD_REQUEST, "Not uploaded", &e.body_text()),
        };
        if field.name() != Some("file") {
            continue;
        }
        let name = field.file_name().unwrap_or("contacts.csv").to_string();
        let bytes = match field.bytes().await {
            Ok(b) => b,
            Err(e) => return refused(StatusCode::BAD_REQUEST, "Not uploaded", &e.body_text()),
        };
        let Ok(text) = String::from_utf8(bytes.to_vec()) else {
            return refused(StatusCode::UNPROCESSABLE_ENTITY, "Not uploaded", "The file is not UTF-8 text; save it as CSV UTF-8.");
        };
        return match st.store.stage_import(&name, &text, &by).await {
            Ok(id) => Redirect::to(&format!("/contacts/import/{id}")).into_response(),
            Err(e) => failed(e),
        };
    }
}

/// `POST /contacts/import/{id}/run` (the mapping form): runs the import and shows its report.
async fn run(State(st): State<AppState>, session: Session, Path(id): Path<String>, body: String) -> Response {
    let by = match admin(&st, &session).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Ok(id) = id.parse::<i64>() else { return refused(StatusCode::NOT_FOUND, "No such import", "That is not an import.") };
    let (_, file, report) = match st.store.import_file(id).await {
        Ok(f) => f,
        Err(e) => return failed(e),
    };
    if report.is_some() {
        return Redirect::to(&format!("/contacts/import/{id}")).into_response();
    }
    let pairs = dropcheck_core::contacts::import::form_pairs(&body);
    let mapping = match ImportMapping::from_form(&file.headers, &pairs) {
        Ok(m) => m,
        Err(e) => return refused(StatusCode::UNPROCESSABLE_ENTITY, "Not imported", &e.message),
    };
    match st.store.run_import(id, &mapping, false, &by).await {
        Ok(_) => Redirect::to(&format!("/contacts/import/{id}")).into_response(),
        Err(e) => failed(e),
    }
}

/// `GET /contacts/import/{id}/rejected.csv`
async fn rejected(State(st): State<AppState>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<i64>() else { return refused(StatusCode::NOT_FOUND, "No such import", "That is not an import.") };
    match st.store.import_rejected_csv(id).await {
        Ok(body) => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                (header::CONTENT_DISPOSITION, format!("attachment; filename=\"rejected-rows-{id}.csv\"")),
                (header::CACHE_CONTROL, "no-store".to_string()),
            ],
            body,
        )
            .into_response(),
        Err(e) => failed(e),
    }
}
