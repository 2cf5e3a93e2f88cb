//! Operations: `/healthz` (the process serves), `/readyz` (data loaded), `/metrics`
//! (Prometheus text) and `/info` (a JSON summary, no secrets).

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;

use crate::body::json;
use crate::error::ApiError;
use crate::state::AppState;

/// The routes of this family.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/info", get(info))
}

async fn metrics(State(state): State<AppState>) -> Response {
    let body = state.metrics().render(&state);
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

#[derive(Serialize)]
struct Info {
    version: &'static str,
    mode: String,
    read_only: bool,
    capacity: Option<usize>,
    default_ttl_seconds: Option<f64>,
    sliding: bool,
    keys: usize,
    hits: u64,
    misses: u64,
    evictions: u64,
    expirations: u64,
    uptime_seconds: u64,
    data_dir: Option<String>,
    persistence: Persistence,
}

#[derive(Serialize)]
struct Persistence {
    enabled: bool,
    fsync: Option<String>,
    journal_bytes: Option<u64>,
    snapshot_bytes: Option<u64>,
    last_snapshot_unix_seconds: Option<u64>,
    fsyncs: Option<u64>,
}

async fn info(State(state): State<AppState>) -> Result<Response, ApiError> {
    let store = state.store();
    let stats = store.stats();
    let mode = store.mode();
    let p = state.persistence();
    let info = Info {
        version: env!("CARGO_PKG_VERSION"),
        mode: state.mode().to_owned(),
        read_only: mode.read_only,
        capacity: mode.capacity,
        default_ttl_seconds: mode.default_ttl.map(|d| d.as_secs_f64()),
        sliding: mode.sliding,
        keys: store.len(),
        hits: stats.hits,
        misses: stats.misses,
        evictions: stats.evictions,
        expirations: stats.expirations,
        uptime_seconds: state.uptime().as_secs(),
        data_dir: state.data_dir().map(|d| d.display().to_string()),
        persistence: Persistence {
            enabled: p.is_some(),
            fsync: p.map(|p| p.fsync.to_string()),
            journal_bytes: p.map(|p| p.journal.bytes),
            snapshot_bytes: p.map(|p| p.snapshot.bytes),
            last_snapshot_unix_seconds: p.and_then(|p| {
                let at = p.snapshot.last_written?;
                Some(at.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs())
            }),
            fsyncs: p.map(|p| p.journal.fsyncs),
        },
    };
    let body = serde_json::to_string(&info).map_err(ApiError::internal)?;
    Ok(json(StatusCode::OK, body))
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
