//! The contacts CSV import in the browser, beside its Leptos pages (`/contacts/import` and
//! `/contacts/import/{id}`): the file upload (multipart), running the import with the
//! mapping the page's form holds, and the rejected rows' download. Plain forms: they work
//! without JavaScript. Admins only (the gate, and checked again here for the user's email).

use app::ssr::{session_user, AppState};
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use dropcheck_core::contacts::import::ImportMapping;
use dropcheck_core::domain::Role;
use dropcheck_core::CoreError;
use tower_sessions::Session;

use crate::web::notice_page;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/contacts/upload", post(upload).layer(DefaultBodyLimit::max(crate::api::IMPORT_BODY_LIMIT)))
        .route("/contacts/import/{id}/run", post(run))
        .route("/contacts/import/{id}/rejected.csv", get(rejected))
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
    let pairs: Vec<(String, String)> = form_urlencoded::parse(body.as_bytes()).into_owned().collect();
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
