//! [`ApiError`]: the one error type of every route.
//!
//! Clients get the API's error body, `{"error": "<code>", "message": "<sentence>"}`, with
//! the matching status; server-side failures are logged with their detail and reach
//! the client as a plain `internal` error.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// The error codes of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// `400`: the request is malformed (body, query, key, TTL, pattern, cursor, limit…).
    BadRequest,
    /// `404`: no such key (or route).
    NotFound,
    /// `405`: the route exists but does not take that method.
    MethodNotAllowed,
    /// `409`: a conditional write found the key(s) already there.
    Conflict,
    /// `409`: `incr` on a value that is not an integer, or the result would overflow i64.
    NotAnInteger,
    /// `403`: the server is read-only.
    ReadOnly,
    /// `401`: the bearer token is missing or wrong.
    Unauthorized,
    /// `403`: reserved; no route sends it.
    Forbidden,
    /// `413`: a key, value or body is larger than the server accepts.
    PayloadTooLarge,
    /// `503`: overloaded, timed out, not ready or the backend is unreachable; nothing
    /// was applied, a retry after `Retry-After` is safe.
    Unavailable,
    /// `507`: the data directory cannot be written (a full disk); the write was not
    /// applied and may be retried after `Retry-After`.
    InsufficientStorage,
    /// `504`: a write was sent (or started) and no answer came in time: it may or may
    /// not have been applied. Retry only with the same `Idempotency-Key`.
    OutcomeUnknown,
    /// `507`: `--max-counters` paths are counted already; a new path is not counted.
    CountersFull,
    /// `502`: a value stored in Redis by another client is larger than
    /// `--max-value-bytes`; it is not served.
    StoredValueTooLarge,
    /// `422`: the `Idempotency-Key` came with another request within the window.
    IdempotencyKeyReused,
    /// `409`: the first request with this `Idempotency-Key` still runs; retry shortly.
    IdempotencyKeyInUse,
    /// `400`: over a Redis Cluster, an all-or-nothing write (`POST`/`PATCH /values`)
    /// names keys of several hash slots; nothing was written. Give the keys a common
    /// hash tag (`{user:1}:a`, `{user:1}:b`).
    CrossSlot,
    /// `500`: a server-side failure.
    Internal,
}

impl ErrorCode {
    /// Every code, in the order the OpenAPI document lists them.
    pub const ALL: &[ErrorCode] = &[
        ErrorCode::BadRequest,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::Conflict,
        ErrorCode::NotAnInteger,
        ErrorCode::ReadOnly,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::PayloadTooLarge,
        ErrorCode::Unavailable,
        ErrorCode::InsufficientStorage,
        ErrorCode::OutcomeUnknown,
        ErrorCode::CountersFull,
        ErrorCode::StoredValueTooLarge,
        ErrorCode::IdempotencyKeyReused,
        ErrorCode::IdempotencyKeyInUse,
        ErrorCode::CrossSlot,
        ErrorCode::Internal,
    ];

    /// The code as it appears in a response body.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::Conflict => "conflict",
            ErrorCode::NotAnInteger => "not_an_integer",
            ErrorCode::ReadOnly => "read_only",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::InsufficientStorage => "insufficient_storage",
            ErrorCode::OutcomeUnknown => "outcome_unknown",
            ErrorCode::CountersFull => "counters_full",
            ErrorCode::StoredValueTooLarge => "stored_value_too_large",
            ErrorCode::IdempotencyKeyReused => "idempotency_key_reused",
            ErrorCode::IdempotencyKeyInUse => "idempotency_key_in_use",
            ErrorCode::CrossSlot => "cross_slot",
            ErrorCode::Internal => "internal",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    status: StatusCode,
    code: ErrorCode,
    message: String,
    retry_after: Option<u32>,
    /// The `WWW-Authenticate` challenge of a `401`.
    challenge: Option<&'static str>,
    /// What went wrong inside the server, for the log only (see [`InternalDetail`]).
    detail: Option<String>,
}

/// The detail of an internal error, carried on its response for the middleware to log:
/// turning an error into a response has no side effect of its own.
#[derive(Debug, Clone)]
pub struct InternalDetail(pub String);

#[derive(Serialize)]
struct Body<'a> {
    error: ErrorCode,
    message: &'a str,
}

impl ApiError {
    fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
            challenge: None,
            detail: None,
        }
    }

    /// `400 bad_request`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, message)
    }

    /// `404 not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, message)
    }

    /// `404 not_found` for a key.
    pub fn no_key(key: &str) -> Self {
        Self::not_found(format!("key {key:?} does not exist"))
    }

    /// `405 method_not_allowed`.
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::MethodNotAllowed,
            "this route does not accept that method",
        )
    }

    /// `409 conflict`.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, ErrorCode::Conflict, message)
    }

    /// `409 not_an_integer`.
    pub fn not_an_integer(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, ErrorCode::NotAnInteger, message)
    }

    /// `403 read_only`.
    pub fn read_only() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            ErrorCode::ReadOnly,
            "this server is read-only: it serves a loaded dataset and accepts no writes",
        )
    }

    /// `401 unauthorized` for a request without a bearer token, with the challenge
    /// `WWW-Authenticate: Bearer` (RFC 6750, section 3).
    pub fn unauthorized() -> Self {
        let mut e = Self::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthorized,
            "send the server's token as `Authorization: Bearer TOKEN`",
        );
        e.challenge = Some("Bearer");
        e
    }

    /// `401 unauthorized` for a request whose bearer token is wrong, with the challenge
    /// `WWW-Authenticate: Bearer error="invalid_token"` (RFC 6750, section 3.1).
    pub fn invalid_token() -> Self {
        let mut e = Self::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthorized,
            "the bearer token is not the server's token; send it as `Authorization: Bearer TOKEN`",
        );
        e.challenge = Some(r#"Bearer error="invalid_token""#);
        e
    }

    /// `413 payload_too_large`.
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::PayloadTooLarge,
            message,
        )
    }

    /// `503 unavailable`, with a `Retry-After` of `seconds`.
    pub fn unavailable(message: impl Into<String>, retry_after: u32) -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Unavailable,
            message,
        );
        e.retry_after = Some(retry_after);
        e
    }

    /// `507 insufficient_storage`: the data directory cannot be written (a full disk),
    /// so the write was not applied; it may be retried once there is room again.
    pub fn insufficient_storage(message: impl Into<String>) -> Self {
        let mut e = Self::new(
            StatusCode::INSUFFICIENT_STORAGE,
            ErrorCode::InsufficientStorage,
            message,
        );
        e.retry_after = Some(5);
        e
    }

    /// `504 outcome_unknown`, without `Retry-After`: a write was sent (or started)
    /// and no answer came in time, so it may or may not have been applied.
    pub fn outcome_unknown(detail: &str) -> Self {
        Self::new(
            StatusCode::GATEWAY_TIMEOUT,
            ErrorCode::OutcomeUnknown,
            format!(
                "{detail}: the write may or may not have been applied; a PUT, PATCH or \
                 DELETE may be sent again as it is, an incr or POST only with the same \
                 Idempotency-Key; or read the data to find out"
            ),
        )
    }

    /// `507 counters_full`: a hit on a new path when `--max-counters` counters exist.
    pub fn counters_full(max: usize) -> Self {
        Self::new(
            StatusCode::INSUFFICIENT_STORAGE,
            ErrorCode::CountersFull,
            format!(
                "the server already counts hits on {max} paths (--max-counters); hits on \
                 those paths still count, a new path is not counted"
            ),
        )
    }

    /// `502 stored_value_too_large`: a value in Redis (written there by another
    /// client) is larger than `--max-value-bytes`; it is not served.
    pub fn stored_value_too_large(key: &str, bytes: u64, max: usize) -> Self {
        Self::new(
            StatusCode::BAD_GATEWAY,
            ErrorCode::StoredValueTooLarge,
            format!(
                "the value stored under {key:?} is {bytes} bytes, larger than this server's \
                 limit of {max} bytes (--max-value-bytes); it is not served"
            ),
        )
    }

    /// `422 idempotency_key_reused`: the key came with a different request.
    pub fn idempotency_key_reused() -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::IdempotencyKeyReused,
            "this Idempotency-Key was used for a different request (route, query or body) \
             within the idempotency window; send a new key for a new request",
        )
    }

    /// `409 idempotency_key_in_use`: the first request with this key is still running.
    pub fn idempotency_key_in_use() -> Self {
        let mut e = Self::new(
            StatusCode::CONFLICT,
            ErrorCode::IdempotencyKeyInUse,
            "a request with this Idempotency-Key is still running; retry shortly with the \
             same key to get its outcome",
        );
        e.retry_after = Some(1);
        e
    }

    /// `400 cross_slot`: an all-or-nothing write over a Redis Cluster names keys of
    /// `slots` hash slots (`first` and `other` among them); nothing was written.
    pub fn cross_slot(first: &str, other: &str, slots: usize) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::CrossSlot,
            format!(
                "the keys {first:?} and {other:?} (of {slots} hash slots in all) are in \
                 different hash slots of the Redis Cluster, where a write of several keys is \
                 all-or-nothing only within one slot; nothing was written. Give the keys a \
                 common hash tag, the part between the first {{ and the next }}, which alone \
                 decides the slot: {{user:1}}:name and {{user:1}}:cart share one (as Redis \
                 answers CROSSSLOT); or write them with PUT /keys, which is not \
                 all-or-nothing"
            ),
        )
    }

    /// `500 internal`; `detail` goes to the log, not to the client.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        let mut e = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            "the server failed to handle the request; the detail is in its log",
        );
        e.detail = Some(detail.to_string());
        e
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The error code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The human sentence.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The `Retry-After` seconds, when the error carries one.
    pub fn retry_after(&self) -> Option<u32> {
        self.retry_after
    }
}

impl From<kvcore::Error> for ApiError {
    fn from(e: kvcore::Error) -> Self {
        use kvcore::Error as E;
        match e {
            E::ReadOnly => ApiError::read_only(),
            E::JournalUnavailable { .. } => ApiError::insufficient_storage(e.to_string()),
            E::NotAnInteger { .. } | E::Overflow { .. } => ApiError::not_an_integer(e.to_string()),
            E::InvalidPattern { .. }
            | E::InvalidCursor { .. }
            | E::InvalidTtl { .. }
            | E::InvalidLimit
            | E::InvalidJson { .. }
            | E::BatchTooLarge { .. } => ApiError::bad_request(e.to_string()),
            E::TooHeavy { key, weight, .. } => ApiError::too_large(format!(
                "the entry for key {key:?} takes {weight} bytes with its overhead, more than \
                 --max-memory allows in all: store a smaller value or raise --max-memory"
            )),
            E::BatchTooHeavy { weight, .. } => ApiError::too_large(format!(
                "the batch takes {weight} bytes with its overhead, more than --max-memory \
                 allows in all: split it or raise --max-memory"
            )),
            other => ApiError::internal(other),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_string(&Body {
            error: self.code,
            message: &self.message,
        })
        .unwrap_or_default();
        let mut response = (
            self.status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if let Some(challenge) = self.challenge {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        if let Some(detail) = self.detail {
            response.extensions_mut().insert(InternalDetail(detail));
        }
        response
    }
}

/// Every error response: `{"error": "<code>", "message": "<human sentence>"}`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"error": "not_found", "message": "key \"k\" does not exist"}))]
pub struct ErrorBody {
    /// The machine-readable error code.
    pub error: ErrorCode,
    /// A sentence for humans.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_internal_error_carries_its_detail_for_the_log_not_the_client() {
        let error = ApiError::internal("journal.kvj: disk on fire");
        assert!(!error.message().contains("disk on fire"));
        let response = error.into_response();
        let detail = response.extensions().get::<InternalDetail>();
        assert_eq!(
            detail.map(|d| d.0.as_str()),
            Some("journal.kvj: disk on fire")
        );
        let plain = ApiError::bad_request("no").into_response();
        assert!(plain.extensions().get::<InternalDetail>().is_none());
    }

    #[test]
    fn every_code_reads_the_same_in_bodies_and_in_as_str() {
        for &code in ErrorCode::ALL {
            let json = serde_json::to_value(code).unwrap();
            assert_eq!(json, code.as_str(), "{code:?}");
        }
    }
}
