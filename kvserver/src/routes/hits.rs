//! Route hit counters: `/api/{*path}` counts, `/stats` lists, `/test/{n}` exercises.
//!
//! Counters live in a store of their own (never listed under `/keys`, never expired
//! or evicted) that persists beside the key space; on a read-only server they still
//! count, in memory.

use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{Request, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::body::json;
use crate::error::ApiError;
use crate::extract::Params;
use crate::state::AppState;

/// Requests `/test/{n}` keeps in flight at once.
const TEST_CONCURRENCY: usize = 16;
/// The most requests one `/test/{n}` sends.
const TEST_MAX: u32 = 100_000;

/// The routes of this family.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api", get(hit_root))
        .route("/api/", get(hit_root))
        .route("/api/{*path}", get(hit))
        .route("/stats", get(stats))
        .route("/stats/", get(stats))
        .route("/test/{n}", post(test))
        .route("/test/{n}/", post(test))
}

#[derive(Serialize)]
struct Hits<'a> {
    path: &'a str,
    hits: i64,
}

async fn hit_root(State(state): State<AppState>) -> Result<Response, ApiError> {
    count(state, "/".to_string()).await
}

async fn hit(
    State(state): State<AppState>,
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<Response, ApiError> {
    let Path(path) = path.map_err(|e| ApiError::bad_request(format!("bad path: {e}")))?;
    count(state, format!("/{path}")).await
}

async fn count(state: AppState, path: String) -> Result<Response, ApiError> {
    let hits = state.hit(path.clone()).await?;
    let body = serde_json::to_string(&Hits { path: &path, hits }).map_err(ApiError::internal)?;
    Ok(json(StatusCode::OK, body))
}

async fn stats(State(state): State<AppState>, params: Params) -> Result<Response, ApiError> {
    let limit = match params.get("limit") {
        None => usize::MAX,
        Some(text) => text.parse::<usize>().map_err(|_| {
            ApiError::bad_request(format!("limit must be a whole number, not {text:?}"))
        })?,
    };
    let mut all = Vec::new();
    let mut cursor = None;
    loop {
        let page = state.hits().scan(None, cursor.as_deref(), 10_000)?;
        all.extend(page.items);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    all.sort_unstable_by(|(pa, ha), (pb, hb)| hb.cmp(ha).then_with(|| pa.cmp(pb)));
    let listed: Vec<Hits<'_>> = all
        .iter()
        .take(limit)
        .map(|(path, hits)| Hits { path, hits: *hits })
        .collect();
    let body = serde_json::to_string(&listed).map_err(ApiError::internal)?;
    Ok(json(StatusCode::OK, body))
}

#[derive(Serialize)]
struct TestReport {
    requests: u32,
    succeeded: u32,
    failed: u32,
    elapsed_ms: u64,
}

/// Sends `n` GETs to random `/api/...` paths of this server over HTTP, at most
/// [`TEST_CONCURRENCY`] at a time, and reports how they went.
async fn test(State(state): State<AppState>, Path(n): Path<String>) -> Result<Response, ApiError> {
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
    let body = serde_json::to_string(&report).map_err(ApiError::internal)?;
    Ok(json(StatusCode::OK, body))
}
