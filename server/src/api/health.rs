//! `GET /health` and the predecessor's `GET /db/test`.

use app::ssr::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

pub(super) async fn health(State(st): State<AppState>) -> Json<Value> {
    Json(json!({
        "success": true,
        "status": "ok",
        "message": "Dropcheck is running",
        "database": st.store.backend(),
        "uptime_seconds": st.settings.started_at.elapsed().as_secs(),
    }))
}

pub(super) async fn db_test(State(st): State<AppState>) -> Response {
    match st.store.ping().await {
        Ok(()) => Json(json!({ "success": true, "message": "database connection ok", "database": st.store.backend() })).into_response(),
        Err(e) => {
            tracing::error!(error = ?e, "database check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "success": false, "message": "database unreachable", "database": st.store.backend() })),
            )
                .into_response()
        }
    }
}
