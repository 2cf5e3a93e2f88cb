//! Operations: `/healthz` (the process serves) and `/readyz` (data loaded).

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;

use crate::body::json;
use crate::error::ApiError;
use crate::state::AppState;

/// The routes of this family.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

async fn healthz() -> Response {
    json(StatusCode::OK, r#"{"status":"ok"}"#.into())
}

async fn readyz(State(state): State<AppState>) -> Result<Response, ApiError> {
    if state.is_ready() {
        Ok(json(StatusCode::OK, r#"{"status":"ready"}"#.into()))
    } else {
        Err(ApiError::unavailable("the server is not ready yet", 1))
    }
}
