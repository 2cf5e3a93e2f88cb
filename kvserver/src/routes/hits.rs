//! Route hit counters: `/api/{*path}` counts, `/stats` lists, `/test/{n}` exercises.
//!
//! Counters live in a store of their own (never listed under `/keys`, never expired
//! or evicted) that persists beside the key space; on a read-only server they still
//! count, in memory.
//!
//! Both are bounded: a path longer than `--max-key-bytes` is refused (`413
//! payload_too_large`, as a key would be), and at most `--max-counters` paths are
//! counted. When that many exist, a hit on a new path is refused (`507
//! counters_full`) while the paths already counted keep counting. Refusing rather
//! than evicting the least hit keeps every count shown exact: an evicted path that
//! came back would restart at 1, and a flood of one-off paths would churn the
//! table without end. A hit is a write that is not idempotent, so it takes an
//! `Idempotency-Key` as `incr` does.

use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{Request, header};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::error::ErrorBody;
use crate::extract::Params;
use crate::idempotency::{self, Idempotency};
use crate::state::AppState;

/// Requests `/test/{n}` keeps in flight at once.
const TEST_CONCURRENCY: usize = 16;
/// The most requests one `/test/{n}` sends.
const TEST_MAX: u32 = 100_000;

/// The routes of this family.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(hit_root))
        .routes(routes!(hit_root_slash))
        .routes(routes!(hit))
        .routes(routes!(stats))
        .routes(routes!(stats_slash))
        .routes(routes!(test))
        .routes(routes!(test_slash))
}

/// A route path and how often it was hit.
#[derive(Serialize, ToSchema)]
struct Hits<'a> {
    /// The path after `/api`, percent-decoded, trailing slash kept; `/` for `/api` and `/api/`.
    #[schema(example = "/hello/world/")]
    path: &'a str,
    /// The count.
    hits: i64,
}

#[utoipa::path(
    get,
    path = "/api",
    tag = "hits",
    summary = "Count a hit on the path `/`",
    params(("Idempotency-Key" = Option<String>, Header, description = "1 to 255 visible ASCII characters naming this request; a retry with the same key gets the first outcome")),
    responses(
        (status = 200, description = "The path and its count after this hit", body = Hits),
        (status = 507, description = "counters_full: `--max-counters` paths are counted already (and this is not one)", body = ErrorBody),
    )
)]
async fn hit_root(State(state): State<AppState>, idem: Idempotency) -> Result<Response, ApiError> {
    count(state, "/".to_string(), idem).await
}

#[utoipa::path(
    get,
    path = "/api/",
    tag = "hits",
    summary = "Count a hit on the path `/`",
    params(("Idempotency-Key" = Option<String>, Header, description = "1 to 255 visible ASCII characters naming this request; a retry with the same key gets the first outcome")),
    responses(
        (status = 200, description = "The path and its count after this hit", body = Hits),
        (status = 507, description = "counters_full: `--max-counters` paths are counted already (and this is not one)", body = ErrorBody),
    )
)]
async fn hit_root_slash(state: State<AppState>, idem: Idempotency) -> Result<Response, ApiError> {
    hit_root(state, idem).await
}

#[utoipa::path(
    get,
    path = "/api/{*path}",
    tag = "hits",
    summary = "Count a hit on a path",
    description = "Counts a hit on `/{path}`: any depth, trailing slash kept, percent-decoded.",
    params(
        ("path" = String, Path, description = "The rest of the path after `/api/`; it may contain `/`. The counted path (`/` and this) is at most `--max-key-bytes` bytes", example = "hello/world/"),
        ("Idempotency-Key" = Option<String>, Header, description = "1 to 255 visible ASCII characters naming this request; a retry with the same key gets the first outcome"),
    ),
    responses(
        (status = 200, description = "The path and its count after this hit", body = Hits),
        (status = 400, description = "bad_request: the path is not valid percent-encoded UTF-8, or a bad `Idempotency-Key`", body = ErrorBody),
        (status = 413, description = "payload_too_large: the path is longer than `--max-key-bytes`", body = ErrorBody),
        (status = 422, description = "idempotency_key_reused: the `Idempotency-Key` came with another request", body = ErrorBody),
        (status = 504, description = "outcome_unknown: the hit was sent and no answer came; it may or may not have been counted", body = ErrorBody),
        (status = 507, description = "counters_full: `--max-counters` paths are counted already (and this is not one)", body = ErrorBody),
    )
)]
async fn hit(
    State(state): State<AppState>,
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
    idem: Idempotency,
) -> Result<Response, ApiError> {
    let Path(path) = path.map_err(|e| ApiError::bad_request(format!("bad path: {e}")))?;
    count(state, format!("/{path}"), idem).await
}

async fn count(state: AppState, path: String, idem: Idempotency) -> Result<Response, ApiError> {
    let max = state.limits().max_key_bytes;
    if path.len() > max {
        return Err(ApiError::too_large(format!(
            "a counter path of {} bytes is longer than the limit of {max} bytes (--max-key-bytes)",
            path.len()
        )));
    }
    let done = state
        .backend()
        .hit(&path, idem.with_body(&[]).as_ref())
        .await?;
    let body = Json(Hits {
        path: &path,
        hits: done.value,
    });
    Ok(idempotency::mark(body.into_response(), done.replayed))
}

#[utoipa::path(
    get,
    path = "/stats",
    tag = "hits",
    summary = "List the hit counters",
    params(("limit" = Option<u64>, Query, description = "Most entries to return (default: all)")),
    responses(
        (status = 200, description = "Counters by hits descending, then path ascending", body = Vec<Hits>),
        (status = 400, description = "bad_request: `limit` is not a whole number", body = ErrorBody),
    )
)]
async fn stats(State(state): State<AppState>, params: Params) -> Result<Response, ApiError> {
    // A list that borrows from `all` is returned as a response rather than a
    // `Json<Vec<Hits>>` (which could not outlive this function).
    let limit = match params.get("limit") {
        None => usize::MAX,
        Some(text) => text.parse::<usize>().map_err(|_| {
            ApiError::bad_request(format!("limit must be a whole number, not {text:?}"))
        })?,
    };
    let mut all = state.backend().hits().await?;
    all.sort_unstable_by(|(pa, ha), (pb, hb)| hb.cmp(ha).then_with(|| pa.cmp(pb)));
    let listed: Vec<Hits<'_>> = all
        .iter()
        .take(limit)
        .map(|(path, hits)| Hits { path, hits: *hits })
        .collect();
    Ok(Json(listed).into_response())
}

#[utoipa::path(
    get,
    path = "/stats/",
    tag = "hits",
    summary = "List the hit counters (as `/stats`)",
    params(("limit" = Option<u64>, Query, description = "Most entries to return (default: all)")),
    responses(
        (status = 200, description = "Counters by hits descending, then path ascending", body = Vec<Hits>),
        (status = 400, description = "bad_request: `limit` is not a whole number", body = ErrorBody),
    )
)]
async fn stats_slash(state: State<AppState>, params: Params) -> Result<Response, ApiError> {
    stats(state, params).await
}

/// How a `/test/{n}` run went.
#[derive(Serialize, ToSchema)]
struct TestReport {
    /// Requests sent (`n`).
    requests: u32,
    /// Requests answered with a 2xx status.
    succeeded: u32,
    /// Requests that failed, timed out or got another status.
    failed: u32,
    /// Wall-clock time of the run, in milliseconds.
    elapsed_ms: u64,
}

/// Sends `n` GETs to random `/api/...` paths of this server over HTTP, at most
/// [`TEST_CONCURRENCY`] at a time, and reports how they went.
#[utoipa::path(
    post,
    path = "/test/{n}",
    tag = "hits",
    summary = "Send n requests to random /api paths",
    description = "Sends `n` GETs to random `/api/...` paths over HTTP to this server, with bounded \
        concurrency, and reports how they went. `503` when the server does not listen on a socket.",
    params(("n" = u32, Path, minimum = 1, maximum = 100_000, description = "How many requests to send, 1 to 100000")),
    responses(
        (status = 200, description = "The run's report", body = TestReport),
        (status = 400, description = "bad_request: `n` is not a whole number from 1 to 100000", body = ErrorBody),
    )
)]
async fn test(
    State(state): State<AppState>,
    Path(n): Path<String>,
) -> Result<Json<TestReport>, ApiError> {
    let n: u32 = n
        .parse()
        .ok()
        .filter(|n| (1..=TEST_MAX).contains(n))
        .ok_or_else(|| {
            ApiError::bad_request(format!("n must be a whole number from 1 to {TEST_MAX}"))
        })?;
    let addr = state
        .self_addr()
        .ok_or_else(|| ApiError::unavailable("the server is not listening on a socket", 1))?;
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let auth = state.auth_token().map(|t| format!("Bearer {t}"));
    let random = RandomState::new();
    let slots = Arc::new(Semaphore::new(TEST_CONCURRENCY));
    let mut running = JoinSet::new();
    let (mut succeeded, mut failed) = (0u32, 0u32);
    let mut tally = |ok: Result<bool, _>| match ok {
        Ok(true) => succeeded += 1,
        _ => failed += 1,
    };
    let started = Instant::now();
    for i in 0..n {
        let slot = Arc::clone(&slots)
            .acquire_owned()
            .await
            .map_err(ApiError::internal)?;
        let r = random.hash_one(i);
        let uri = format!("http://{addr}/api/test/{}/{}", r % 100, (r >> 32) % 10);
        let mut request = Request::get(uri);
        if let Some(auth) = &auth {
            request = request.header(header::AUTHORIZATION, auth);
        }
        let request = request.body(Empty::new()).map_err(ApiError::internal)?;
        let client = client.clone();
        running.spawn(async move {
            let _slot = slot;
            let call = async {
                let response = client.request(request).await.ok()?;
                let ok = response.status().is_success();
                response.into_body().collect().await.ok()?;
                Some(ok)
            };
            matches!(
                tokio::time::timeout(Duration::from_secs(10), call).await,
                Ok(Some(true))
            )
        });
        while let Some(done) = running.try_join_next() {
            tally(done);
        }
    }
    while let Some(done) = running.join_next().await {
        tally(done);
    }
    let report = TestReport {
        requests: n,
        succeeded,
        failed,
        elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    };
    Ok(Json(report))
}

#[utoipa::path(
    post,
    path = "/test/{n}/",
    tag = "hits",
    summary = "Send n requests to random /api paths (as `/test/{n}`)",
    params(("n" = u32, Path, minimum = 1, maximum = 100_000, description = "How many requests to send, 1 to 100000")),
    responses(
        (status = 200, description = "The run's report", body = TestReport),
        (status = 400, description = "bad_request: `n` is not a whole number from 1 to 100000", body = ErrorBody),
    )
)]
async fn test_slash(state: State<AppState>, n: Path<String>) -> Result<Json<TestReport>, ApiError> {
    test(state, n).await
}
