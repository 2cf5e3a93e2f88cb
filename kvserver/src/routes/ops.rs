//! Operations: `/healthz` (the process serves), `/readyz` (data loaded), `/metrics`
//! (Prometheus text) and `/info` (a JSON summary, no secrets).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::backend::Backend;
use crate::error::ApiError;
use crate::error::ErrorBody;
use crate::metrics::Figures;
use crate::state::AppState;

/// The routes of this family.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
        .routes(routes!(info))
}

#[utoipa::path(
    get,
    path = "/metrics",
    tag = "ops",
    summary = "Prometheus metrics",
    description = "Prometheus text format: `http_requests_total{method,route,status}`, \
        `http_request_duration_seconds` (histogram), `kv_keys`, `kv_hits_total`, \
        `kv_misses_total`, `kv_evictions_total`, `kv_expirations_total`, `kv_hit_counters`, \
        `kv_hit_counters_max`, with `--max-memory` `kv_memory_used_bytes` and \
        `kv_memory_max_bytes`; and, for older \
        dashboards, `request_count`, `request_latency_seconds`, `internal_error_count`.",
    responses((
        status = 200,
        description = "The metrics",
        body = String,
        content_type = "text/plain; version=0.0.4; charset=utf-8"
    ))
)]
async fn metrics(State(state): State<AppState>) -> Response {
    // Without an answer from the backend, the key and counter gauges keep their last
    // values.
    let figures = Figures {
        stats: state.backend().stats(),
        keys: state.backend().len().await.ok(),
        counters: state.backend().counters().await.ok(),
        max_counters: state.backend().max_counters(),
        persistence: state.persistence().map(|p| (p.journal, p.snapshot)),
        memory: state
            .backend()
            .weight()
            .zip(state.backend().mode().max_weight),
    };
    let body = state.metrics().render(&figures);
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

/// A summary of the server; no secrets.
#[derive(Serialize, ToSchema)]
struct Info {
    /// The kvserver version.
    version: &'static str,
    /// A one-line description of the store mode.
    mode: String,
    /// Whether the server refuses writes.
    read_only: bool,
    /// `--capacity`, or `null` for unbounded.
    #[schema(required = true)]
    capacity: Option<usize>,
    /// `--ttl` in seconds, or `null` for none.
    #[schema(required = true)]
    default_ttl_seconds: Option<f64>,
    /// Whether reads restart TTLs (`--sliding`).
    sliding: bool,
    /// Live keys.
    keys: usize,
    /// Reads that found their key.
    hits: u64,
    /// Reads that did not.
    misses: u64,
    /// Keys evicted to respect `--capacity` or `--max-memory`.
    evictions: u64,
    /// Keys that expired.
    expirations: u64,
    /// Seconds since the server started.
    uptime_seconds: u64,
    /// The data directory, or `null` when data does not persist.
    #[schema(required = true)]
    data_dir: Option<String>,
    /// Persistence state.
    persistence: Persistence,
    /// Where the data lives.
    backend: BackendInfo,
    /// The hit counters of `/api/...`.
    hit_counters: HitCounters,
    /// Memory that keys and values take under `--max-memory` (with `--backend`, the
    /// local cache's).
    memory: Memory,
}

/// Bytes that keys and values take, each entry counted with its overhead, as
/// `--max-memory` bounds them.
#[derive(Serialize, ToSchema)]
struct Memory {
    /// Bytes held now (expired keys not yet removed included); `null` without
    /// `--max-memory`.
    #[schema(required = true)]
    used_bytes: Option<u64>,
    /// `--max-memory` in bytes; `null` for no bound.
    #[schema(required = true)]
    max_bytes: Option<u64>,
}

/// How many paths have a hit counter, and how many may.
#[derive(Serialize, ToSchema)]
struct HitCounters {
    /// Paths counted now.
    count: usize,
    /// The most paths counted (`--max-counters`); a hit on a new path beyond it is
    /// `507 counters_full`.
    max: usize,
}

/// Where the data lives: `local` (this process), or `redis` with a local cache.
#[derive(Serialize, ToSchema)]
struct BackendInfo {
    /// `local` or `redis`.
    kind: &'static str,
    /// With `redis`: the Redis URL, password removed; else `null`.
    #[schema(required = true)]
    url: Option<String>,
    /// With `redis`: seconds a local copy is trusted (`--cache-ttl`); else `null`.
    #[schema(required = true)]
    cache_ttl_seconds: Option<f64>,
    /// With `redis`: entries in the local cache now; else `null`.
    #[schema(required = true)]
    cache_entries: Option<usize>,
    /// With `redis`: reads the local cache answered; else `null`.
    #[schema(required = true)]
    cache_hits: Option<u64>,
    /// With `redis`: reads that asked Redis; else `null`.
    #[schema(required = true)]
    cache_misses: Option<u64>,
}

impl BackendInfo {
    fn of(backend: &Backend) -> BackendInfo {
        match backend.redis() {
            None => BackendInfo {
                kind: "local",
                url: None,
                cache_ttl_seconds: None,
                cache_entries: None,
                cache_hits: None,
                cache_misses: None,
            },
            Some(redis) => {
                let stats = redis.cache_stats();
                BackendInfo {
                    kind: "redis",
                    url: Some(redis.url().to_owned()),
                    cache_ttl_seconds: Some(redis.cache_ttl().as_secs_f64()),
                    cache_entries: Some(redis.cache_len()),
                    cache_hits: Some(stats.hits),
                    cache_misses: Some(stats.misses),
                }
            }
        }
    }
}

/// Persistence state; every field but `enabled` is `null` when data does not persist.
#[derive(Serialize, ToSchema)]
struct Persistence {
    /// Whether data persists to a data directory.
    enabled: bool,
    /// The journal's fsync policy: `always`, `everysec` or `no`.
    #[schema(required = true)]
    fsync: Option<String>,
    /// Size of the journal.
    #[schema(required = true)]
    journal_bytes: Option<u64>,
    /// Size of the last snapshot.
    #[schema(required = true)]
    snapshot_bytes: Option<u64>,
    /// When the last snapshot was written, in Unix seconds; `null` if never.
    #[schema(required = true)]
    last_snapshot_unix_seconds: Option<u64>,
    /// How many fsyncs the journal has done.
    #[schema(required = true)]
    fsyncs: Option<u64>,
}

#[utoipa::path(
    get,
    path = "/info",
    tag = "ops",
    summary = "Server information",
    responses((status = 200, description = "A summary of the server", body = Info))
)]
async fn info(State(state): State<AppState>) -> Result<Json<Info>, ApiError> {
    let backend = state.backend();
    let keys = backend.len().await?;
    let stats = backend.stats();
    let mode = backend.mode();
    let p = state.persistence();
    let info = Info {
        version: env!("CARGO_PKG_VERSION"),
        mode: state.mode().to_owned(),
        read_only: mode.read_only,
        capacity: mode.capacity,
        default_ttl_seconds: mode.default_ttl.map(|d| d.as_secs_f64()),
        sliding: mode.sliding,
        keys,
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
        backend: BackendInfo::of(backend),
        hit_counters: HitCounters {
            count: backend.counters().await?,
            max: backend.max_counters(),
        },
        memory: Memory {
            used_bytes: backend.weight(),
            max_bytes: mode.max_weight,
        },
    };
    Ok(Json(info))
}

#[utoipa::path(
    get,
    path = "/healthz",
    tag = "ops",
    summary = "Liveness probe",
    description = "Needs no token and is never shed.",
    security(()),
    responses((
        status = 200,
        description = "The process serves: `{\"status\": \"ok\"}`",
        body = Health,
        example = json!({"status": "ok"})
    ))
)]
async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

#[utoipa::path(
    get,
    path = "/readyz",
    tag = "ops",
    summary = "Readiness probe",
    description = "Needs no token and is never shed.",
    security(()),
    responses(
        (
            status = 200,
            description = "Data is loaded and the backend answers: `{\"status\": \"ready\"}`",
            body = Health,
            example = json!({"status": "ready"})
        ),
        (
            status = 503,
            description = "unavailable: the data directory cannot be written (a full disk; writes are refused meanwhile), or the Redis backend does not answer",
            body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait before asking again"))
        ),
    )
)]
async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    state.backend().ready().await?;
    Ok(Json(Health { status: "ready" }))
}

/// The body of the probes.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` from `/healthz`, `ready` from `/readyz`.
    #[schema(example = "ok")]
    pub status: &'static str,
}
