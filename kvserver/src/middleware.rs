//! The middleware every request passes, as one layer ([`gate`]): metrics, load
//! shedding and the request timeout, authentication, then the query string.
//!
//! Order matters and is part of the API (`docs/http-api.md`): a request beyond the
//! concurrency limit is shed at once (`503` with `Retry-After`) rather than queued
//! without bound; then the token is checked (`401`) before routing can answer
//! `404`/`405`; then a query parameter the route does not declare is refused (`400`),
//! except that a write on a read-only server is left to answer `403` first. One layer
//! rather than four, because each layer costs every request a boxed future.
//!
//! A request cut by the timeout answers `503` when it had not started a write, and
//! `504 outcome_unknown` when it had: the write may still complete.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use axum::extract::{MatchedPath, Query, Request, State};
use axum::http::{Method, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::backend;
use crate::error::{ApiError, InternalDetail};
use crate::openapi;
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
    let response = admit(&state, request, route.as_ref(), next).await;
    if let Some(InternalDetail(detail)) = response.extensions().get() {
        tracing::error!(%detail, %method, "internal error");
    }
    // Labelled as the OpenAPI document spells the route (`/api/{path}`).
    let label = route
        .as_ref()
        .map_or("unmatched".into(), |r| openapi::template(r.as_str()));
    state.metrics().request(
        &method,
        &label,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// Sheds load beyond the concurrency limit, requires the token when the server has
/// one, refuses unknown query parameters and bounds the request's time. Probes are
/// neither shed, authenticated nor timed.
async fn admit(
    state: &AppState,
    request: Request,
    route: Option<&MatchedPath>,
    next: Next,
) -> Response {
    if is_probe(request.uri().path()) {
        if let Err(e) = check_query(state, request.method(), request.uri(), route) {
            return e.into_response();
        }
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
            .and_then(bearer_token);
        match given {
            None => return ApiError::unauthorized().into_response(),
            // Constant-time: the comparison takes as long wherever the first difference is.
            Some(given) if !bool::from(given.as_bytes().ct_eq(token.as_bytes())) => {
                return ApiError::invalid_token().into_response();
            }
            Some(_) => {}
        }
    }
    if let Err(e) = check_query(state, request.method(), request.uri(), route) {
        return e.into_response();
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

/// Refuses (`400`) query parameters that the matched operation does not declare in the
/// OpenAPI document, naming them and those it does declare. Requests that match no
/// route or method are left to the router (`404`/`405`); a write on a read-only server
/// is left to answer `403`.
fn check_query(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    route: Option<&MatchedPath>,
) -> Result<(), ApiError> {
    if uri.query().is_none() {
        return Ok(());
    }
    let Some(route) = route else {
        return Ok(());
    };
    let template = openapi::template(route.as_str());
    let Some(rules) = openapi::query_params(method.as_str(), &template) else {
        return Ok(());
    };
    if rules.refused_when_read_only && state.read_only() {
        return Ok(());
    }
    // A query string that does not parse is the handler's to refuse, with its detail.
    let Ok(Query(pairs)) = Query::<Vec<(String, String)>>::try_from_uri(uri) else {
        return Ok(());
    };
    let mut unknown: Vec<&str> = Vec::new();
    for (name, _) in &pairs {
        if !rules.names.contains(name) && !unknown.contains(&name.as_str()) {
            unknown.push(name);
        }
    }
    if unknown.is_empty() {
        return Ok(());
    }
    Err(ApiError::bad_request(unknown_query_message(
        &unknown,
        method.as_str(),
        &template,
        &rules.names,
    )))
}

/// `unknown query parameter "tll"; PUT /keys/{key} accepts: ttl, keepttl, if`. Names
/// the first few unknown parameters, each cut short if long: the message repeats what
/// the client sent, so it is bounded.
fn unknown_query_message(unknown: &[&str], method: &str, route: &str, known: &[String]) -> String {
    const NAMES: usize = 10;
    const CHARS: usize = 64;
    let mut quoted: Vec<String> = unknown
        .iter()
        .take(NAMES)
        .map(|n| match n.char_indices().nth(CHARS) {
            Some((cut, _)) => format!("{:?}...", &n[..cut]),
            None => format!("{n:?}"),
        })
        .collect();
    if unknown.len() > NAMES {
        quoted.push(format!("and {} more", unknown.len() - NAMES));
    }
    let plural = if unknown.len() == 1 { "" } else { "s" };
    let accepted = if known.is_empty() {
        "takes no query parameters".to_owned()
    } else {
        format!("accepts: {}", known.join(", "))
    };
    format!(
        "unknown query parameter{plural} {}; {method} {route} {accepted}",
        quoted.join(", ")
    )
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
    use super::{bearer_token, unknown_query_message};

    #[test]
    fn unknown_query_messages_name_what_is_accepted() {
        let known = ["ttl".to_owned(), "keepttl".to_owned(), "if".to_owned()];
        assert_eq!(
            unknown_query_message(&["tll"], "PUT", "/keys/{key}", &known),
            r#"unknown query parameter "tll"; PUT /keys/{key} accepts: ttl, keepttl, if"#
        );
        assert_eq!(
            unknown_query_message(&["a", "b"], "GET", "/info", &[]),
            r#"unknown query parameters "a", "b"; GET /info takes no query parameters"#
        );
        let long = "x".repeat(100);
        let many: Vec<&str> = std::iter::repeat_n(long.as_str(), 12).collect();
        let message = unknown_query_message(&many, "GET", "/info", &[]);
        assert!(message.len() < 1000, "{message}");
        assert!(
            message.contains(&format!("\"{}\"...", "x".repeat(64))),
            "{message}"
        );
        assert!(message.contains("and 2 more;"), "{message}");
    }

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
