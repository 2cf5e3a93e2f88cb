//! The middleware every request passes, as one layer ([`gate`]): metrics, load
//! shedding and the request timeout, then authentication.
//!
//! A request cut by the timeout answers `503` when it had not started a write, and
//! `504 outcome_unknown` when it had: the write may still complete.
//!
//! Order matters and follows the spec: a request beyond the concurrency limit is shed
//! at once (`503` with `Retry-After`) rather than queued without bound; then the token
//! is checked (`401`) before routing can answer `404`/`405`. One layer rather than
//! three, because each layer costs every request a boxed future.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::backend;
use crate::error::ApiError;
use crate::state::AppState;

/// Routes that stay open without a token and are never shed: probes must see the truth.
fn is_probe(path: &str) -> bool {
    path == "/healthz" || path == "/readyz"
}

/// Admits a request (load shedding, the token, the timeout) and counts it and its
/// duration, labelled by the matched route template.
pub async fn gate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().cloned();
    let response = admit(&state, request, next).await;
    state.metrics().request(
        &method,
        route.as_ref().map_or("unmatched", MatchedPath::as_str),
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// Sheds load beyond the concurrency limit, requires the token when the server has
/// one, and bounds the request's time. Probes pass straight through.
async fn admit(state: &AppState, request: Request, next: Next) -> Response {
    if is_probe(request.uri().path()) {
        return next.run(request).await;
    }
    let Ok(_slot) = Arc::clone(state.slots()).try_acquire_owned() else {
        tracing::warn!("shedding load: too many requests in flight");
        return ApiError::unavailable("too many requests in flight; retry shortly", 1)
            .into_response();
    };
    if let Some(token) = state.auth_token() {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer_token)
            .unwrap_or("");
        // Constant-time: the comparison takes as long wherever the first difference is.
        if !bool::from(given.as_bytes().ct_eq(token.as_bytes())) {
            return ApiError::unauthorized().into_response();
        }
    }
    let write_started = Arc::new(AtomicBool::new(false));
    let handled = backend::track_writes(Arc::clone(&write_started), next.run(request));
    match tokio::time::timeout(state.limits().request_timeout, handled).await {
        Ok(response) => response,
        // A write cut short once started may still complete (on the blocking pool,
        // or in Redis); before that, nothing was applied.
        Err(_) if write_started.load(Ordering::Relaxed) => {
            ApiError::outcome_unknown("the request took longer than --request-timeout")
                .into_response()
        }
        Err(_) => ApiError::unavailable("the request took too long", 1).into_response(),
    }
}

/// The token of an `Authorization: Bearer TOKEN` header value. The scheme name is
/// case-insensitive (RFC 9110, section 11.1); everything after its one space is the
/// token, taken as sent.
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token)
}

#[cfg(test)]
mod tests {
    use super::bearer_token;

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        for value in ["Bearer t0k", "bearer t0k", "BEARER t0k"] {
            assert_eq!(bearer_token(value), Some("t0k"), "{value}");
        }
        assert_eq!(bearer_token("Bearer  t0k"), Some(" t0k"));
        for value in ["Basic t0k", "Bearert0k", "t0k", ""] {
            assert_eq!(bearer_token(value), None, "{value}");
        }
    }
}
