//! The API's errors: every one a JSON body `{"error": code, "message": text}` with a fitting
//! status, including the extractors' rejections.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use dropcheck_core::CoreError;
use serde_json::json;

/// An API error: the status, a stable code, and a message for people.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into() }
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if e.is_internal() {
            tracing::error!(error = ?e, "API request failed");
        }
        Self { status, code: e.code(), message: e.public_message() }
    }
}

impl From<dropcheck_core::InputError> for ApiError {
    fn from(e: dropcheck_core::InputError) -> Self {
        CoreError::from(e).into()
    }
}

/// Malformed JSON is 400; well-formed JSON with missing or mistyped fields is 422.
impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::JsonDataError(e) => Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", e.body_text()),
            JsonRejection::JsonSyntaxError(e) => Self::new(StatusCode::BAD_REQUEST, "malformed_json", e.body_text()),
            JsonRejection::MissingJsonContentType(_) => {
                Self::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "send JSON with Content-Type: application/json")
            }
            other => Self::new(StatusCode::BAD_REQUEST, "bad_request", other.body_text()),
        }
    }
}

/// A path parameter, refused with the JSON error (404: a path that names nothing) instead of
/// axum's plain-text answer.
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

impl From<axum::extract::rejection::PathRejection> for ApiError {
    fn from(r: axum::extract::rejection::PathRejection) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("no such resource: {}", r.body_text()))
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_query", r.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_client_error() {
            tracing::info!(status = self.status.as_u16(), code = self.code, "API request refused: {}", self.message);
        }
        (self.status, Json(json!({ "success": false, "error": self.code, "message": self.message }))).into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

pub(super) async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such API route")
}
