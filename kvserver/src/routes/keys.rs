//! The canonical key API: `/keys`, `/keys/{key}`, `/keys/{key}/incr`, `/keys/{key}/ttl`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use kvcore::{Expiry, Pattern, SetOptions, SetOutcome};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::body::{Pairs, StoredValue, ttl_ms};
use crate::error::ApiError;
use crate::error::ErrorBody;
use crate::extract::{Body, Key, Params, Writable};
use crate::idempotency::{self, Idempotency};
use crate::state::AppState;

/// The routes of this family.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(list, put_many, delete_all))
        .routes(routes!(get_one, head_one, put_one, delete_one))
        .routes(routes!(incr))
        .routes(routes!(get_ttl, put_ttl, delete_ttl))
}

#[utoipa::path(
    get,
    path = "/keys/{key}",
    tag = "keys",
    summary = "Read a key",
    description = "The value and remaining TTL of a key. With `--sliding`, restarts the key's TTL.",
    params(("key" = String, Path, description = "The key, percent-encoded: non-empty UTF-8, at most `--max-key-bytes` (default 512) bytes")),
    responses(
        (status = 200, description = "The key, its value and its TTL", body = KeyValue),
        (status = 400, description = "bad_request: the key is not valid percent-encoded UTF-8", body = ErrorBody),
        (status = 404, description = "not_found: the key does not exist", body = ErrorBody),
        (status = 413, description = "payload_too_large: the key is longer than `--max-key-bytes`", body = ErrorBody),
    )
)]
async fn get_one(State(state): State<AppState>, Key(key): Key) -> Result<Json<KeyValue>, ApiError> {
    let (value, ttl) = state
        .backend()
        .get_with_ttl(&key)
        .await?
        .ok_or_else(|| ApiError::no_key(&key))?;
    Ok(Json(KeyValue {
        key,
        value: StoredValue::new(value),
        ttl_ms: ttl_ms(ttl),
    }))
}

#[utoipa::path(
    head,
    path = "/keys/{key}",
    tag = "keys",
    summary = "Check that a key exists",
    description = "Does not restart a sliding TTL. Responses have no body.",
    params(("key" = String, Path, description = "The key, percent-encoded: non-empty UTF-8, at most `--max-key-bytes` (default 512) bytes")),
    responses(
        (status = 200, description = "The key exists"),
        (status = 400, description = "bad_request: the key is not valid percent-encoded UTF-8"),
        (status = 404, description = "The key does not exist"),
        (status = 413, description = "payload_too_large: the key is longer than `--max-key-bytes`"),
    )
)]
async fn head_one(State(state): State<AppState>, Key(key): Key) -> Result<StatusCode, ApiError> {
    if state.backend().contains(&key).await? {
        Ok(StatusCode::OK)
    } else {
        Ok(StatusCode::NOT_FOUND)
    }
}

#[utoipa::path(
    put,
    path = "/keys/{key}",
    tag = "keys",
    summary = "Write a key",
    description = "Stores the body, any JSON value, under the key. Without `ttl` the key gets the \
        default `--ttl` (or none), replacing any TTL it had, unless `keepttl=true`.",
    params(
        ("key" = String, Path, description = "The key, percent-encoded: non-empty UTF-8, at most `--max-key-bytes` (default 512) bytes"),
        ("ttl" = Option<f64>, Query, minimum = 0.001, maximum = 315_360_000, description = "Time to live in seconds, fractional allowed, 0.001 to 315360000"),
        ("keepttl" = Option<bool>, Query, description = "`true`: keep the key's existing TTL (not with `ttl`)"),
        ("if" = inline(Option<Condition>), Query, description = "`absent`: only create (else `409`); `present`: only replace (else `404`)"),
    ),
    request_body(
        content = serde_json::Value,
        content_type = "application/json",
        description = "The value: any JSON value, at most `--max-value-bytes` (default 1 MiB) of compact JSON",
    ),
    responses(
        (status = 200, description = "An existing key was replaced (`created` is false)", body = Created),
        (status = 201, description = "The key was created (`created` is true)", body = Created),
        (status = 400, description = "bad_request: bad key, body not JSON, bad `ttl`, `keepttl` or `if`, or both `ttl` and `keepttl=true`", body = ErrorBody),
        (status = 403, description = "read_only: the server is read-only", body = ErrorBody),
        (status = 404, description = "not_found: `if=present` and the key does not exist", body = ErrorBody),
        (status = 409, description = "conflict: `if=absent` and the key exists", body = ErrorBody),
        (status = 413, description = "payload_too_large: the key, value or body is too large", body = ErrorBody),
    )
)]
async fn put_one(
    State(state): State<AppState>,
    _: Writable,
    Key(key): Key,
    params: Params,
    body: Body,
) -> Result<(StatusCode, Json<Created>), ApiError> {
    let mut opts = SetOptions::new();
    if let Some(ttl) = params.ttl(&["ttl"])? {
        opts = opts.ttl(ttl);
    }
    if params.flag("keepttl")? {
        if opts.expiry != Expiry::Default {
            return Err(ApiError::bad_request(
                "give either ttl or keepttl=true, not both",
            ));
        }
        opts = opts.keep_ttl();
    }
    let (if_absent, if_present) = match params.get("if") {
        None => (false, false),
        Some("absent") => (true, false),
        Some("present") => (false, true),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "if must be absent or present, not {other:?}"
            )));
        }
    };
    if if_absent {
        opts = opts.if_absent();
    }
    if if_present {
        opts = opts.if_present();
    }
    let value = body.value(state.limits())?;
    let outcome = state.backend().set(&key, value, opts).await?;
    let (status, created) = match outcome {
        SetOutcome::Created => (StatusCode::CREATED, true),
        SetOutcome::Replaced => (StatusCode::OK, false),
        SetOutcome::NotSet if if_absent => {
            return Err(ApiError::conflict(format!("key {key:?} already exists")));
        }
        SetOutcome::NotSet => return Err(ApiError::no_key(&key)),
    };
    Ok((status, Json(Created { key, created })))
}

#[utoipa::path(
    delete,
    path = "/keys/{key}",
    tag = "keys",
    summary = "Delete a key",
    params(("key" = String, Path, description = "The key, percent-encoded: non-empty UTF-8, at most `--max-key-bytes` (default 512) bytes")),
    responses(
        (status = 204, description = "The key was deleted"),
        (status = 400, description = "bad_request: the key is not valid percent-encoded UTF-8", body = ErrorBody),
        (status = 403, description = "read_only: the server is read-only", body = ErrorBody),
        (status = 404, description = "not_found: the key does not exist", body = ErrorBody),
        (status = 413, description = "payload_too_large: the key is longer than `--max-key-bytes`", body = ErrorBody),
    )
)]
async fn delete_one(
    State(state): State<AppState>,
    _: Writable,
    Key(key): Key,
) -> Result<StatusCode, ApiError> {
    if state.backend().delete(&key).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::no_key(&key))
    }
}

#[utoipa::path(
    put,
    path = "/keys",
    tag = "keys",
    summary = "Write many keys",
    description = "Stores every pair of the body, overwriting existing keys. With `--capacity`, \
        writing keys that are new may evict the least recently used ones; `evicted` says how many.",
    params(
        ("expire_in" = Option<f64>, Query, minimum = 0.001, maximum = 315_360_000, description = "Time to live in seconds for every pair, 0.001 to 315360000"),
        ("ttl" = Option<f64>, Query, minimum = 0.001, maximum = 315_360_000, description = "Alias of `expire_in` (which wins when both are given)"),
    ),
    request_body(
        content = Pairs,
        content_type = "application/json",
        description = "A non-empty JSON object of `key: value` pairs",
    ),
    responses(
        (status = 200, description = "The pairs were stored; `evicted` live keys made room for them", body = Stored),
        (status = 400, description = "bad_request: the body is not a non-empty object, a key is empty, or bad `expire_in`/`ttl`", body = ErrorBody),
        (status = 403, description = "read_only: the server is read-only", body = ErrorBody),
        (status = 413, description = "payload_too_large: a key, value or the body is too large", body = ErrorBody),
    )
)]
async fn put_many(
    State(state): State<AppState>,
    _: Writable,
    params: Params,
    body: Body,
) -> Result<Json<Stored>, ApiError> {
    let expiry = params
        .ttl(&["expire_in", "ttl"])?
        .map_or(Expiry::Default, Expiry::After);
    let items = body.object(state.limits())?;
    let written = state.backend().set_many(items, expiry).await?;
    Ok(Json(Stored {
        stored: written.stored as u64,
        evicted: written.evicted,
    }))
}

#[utoipa::path(
    delete,
    path = "/keys",
    tag = "keys",
    summary = "Delete every key",
    description = "With `--backend`, empties the server's Redis database.",
    responses(
        (status = 200, description = "Every key was deleted", body = Deleted),
        (status = 403, description = "read_only: the server is read-only", body = ErrorBody),
    )
)]
async fn delete_all(State(state): State<AppState>, _: Writable) -> Result<Json<Deleted>, ApiError> {
    let deleted = state.backend().clear().await? as u64;
    Ok(Json(Deleted { deleted }))
}

#[utoipa::path(
    get,
    path = "/keys",
    tag = "keys",
    summary = "List keys and values, paged",
    description = "A page of live pairs. When more remain, the response carries `X-Next-Cursor`; \
        pass it as `cursor` to continue. With `--sliding`, restarts the listed keys' TTLs.",
    params(
        ("filter" = Option<String>, Query, description = "Redis-style glob: `*`, `?`, `[abc]`, `[a-z]`, `[^a]`/`[!a]`, `\\` escapes; `$` also means `*`", example = "user:*"),
        ("limit" = Option<u64>, Query, minimum = 1, description = "Most pairs in the page, from 1 to `--list-limit` (default 10000, also the default)"),
        ("cursor" = Option<String>, Query, description = "An `X-Next-Cursor` from the previous page (opaque)"),
    ),
    responses(
        (status = 200, description = "A page of pairs", body = Pairs, headers(
            ("X-Next-Cursor" = String, description = "Present when more pairs remain: the `cursor` for the next page")
        )),
        (status = 400, description = "bad_request: bad pattern, limit or cursor", body = ErrorBody),
    )
)]
async fn list(State(state): State<AppState>, params: Params) -> Result<Response, ApiError> {
    let pattern = params.get("filter").map(Pattern::new).transpose()?;
    let max = state.limits().list_limit;
    let limit = match params.get("limit") {
        None => max,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if n >= 1 => n.min(max),
            _ => {
                return Err(ApiError::bad_request(format!(
                    "limit must be a whole number from 1 to {max}, not {text:?}"
                )));
            }
        },
    };
    let cursor = params.get("cursor").filter(|c| !c.is_empty());
    let page = state
        .backend()
        .scan(pattern.as_ref(), cursor, limit)
        .await?;
    let mut response = Json(Pairs::of(page.items)).into_response();
    if let Some(next) = page.next_cursor {
        // Cursors are hex text, always a valid header value.
        if let Ok(value) = HeaderValue::from_str(&next) {
            response.headers_mut().insert("x-next-cursor", value);
        }
    }
    Ok(response)
}

#[utoipa::path(
    post,
    path = "/keys/{key}/incr",
    tag = "keys",
    summary = "Add to an integer value",
    description = "A missing key starts at 0 and gets the default TTL; an existing key keeps its TTL. \
        With an `Idempotency-Key` header, a retry of the same request within \
        `--idempotency-window` gets the first outcome (marked `Idempotent-Replayed: true`) \
        instead of adding again.",
    params(
        ("key" = String, Path, description = "The key, percent-encoded: non-empty UTF-8, at most `--max-key-bytes` (default 512) bytes"),
        ("by" = Option<i64>, Query, description = "The amount to add, any 64-bit integer (default 1)"),
        ("Idempotency-Key" = Option<String>, Header, description = "1 to 255 visible ASCII characters naming this request; a retry with the same key gets the first outcome"),
    ),
    responses(
        (status = 200, description = "The value after the increment", body = IncrResult),
        (status = 400, description = "bad_request: bad key, `by` is not a 64-bit integer, or a bad `Idempotency-Key`", body = ErrorBody),
        (status = 403, description = "read_only: the server is read-only", body = ErrorBody),
        (status = 409, description = "not_an_integer: the value is not an integer, or the result would overflow i64; idempotency_key_in_use: the first request with this key still runs", body = ErrorBody),
        (status = 413, description = "payload_too_large: the key is longer than `--max-key-bytes`", body = ErrorBody),
        (status = 422, description = "idempotency_key_reused: the `Idempotency-Key` came with another request", body = ErrorBody),
        (status = 504, description = "outcome_unknown: the increment was sent and no answer came; it may or may not have been applied", body = ErrorBody),
    )
)]
async fn incr(
    State(state): State<AppState>,
    _: Writable,
    Key(key): Key,
    params: Params,
    idem: Idempotency,
    body: Body,
) -> Result<Response, ApiError> {
    // The amount goes in the query; one sent as the body would otherwise be ignored.
    let sent = String::from_utf8_lossy(&body.0);
    let sent = sent.trim();
    if !sent.is_empty() {
        let by = if sent.parse::<i64>().is_ok() {
            sent
        } else {
            "N"
        };
        return Err(ApiError::bad_request(format!(
            "incr takes no body: send the amount to add as the query parameter ?by={by}"
        )));
    }
    let by = match params.get("by") {
        None => 1,
        Some(text) => text.parse::<i64>().map_err(|_| {
            ApiError::bad_request(format!("by must be a 64-bit integer, not {text:?}"))
        })?,
    };
    let done = state
        .backend()
        .incr(&key, by, idem.with_body(&[]).as_ref())
        .await?;
    let body = Json(IncrResult {
        key,
        value: done.value,
    });
    Ok(idempotency::mark(body.into_response(), done.replayed))
}

#[utoipa::path(
    get,
    path = "/keys/{key}/ttl",
    tag = "keys",
    summary = "Read a key's TTL",
    description = "Does not restart a sliding TTL.",
    params(("key" = String, Path, description = "The key, percent-encoded: non-empty UTF-8, at most `--max-key-bytes` (default 512) bytes")),
    responses(
        (status = 200, description = "The remaining TTL", body = TtlResult),
        (status = 400, description = "bad_request: the key is not valid percent-encoded UTF-8", body = ErrorBody),
        (status = 404, description = "not_found: the key does not exist", body = ErrorBody),
        (status = 413, description = "payload_too_large: the key is longer than `--max-key-bytes`", body = ErrorBody),
    )
)]
async fn get_ttl(
    State(state): State<AppState>,
    Key(key): Key,
) -> Result<Json<TtlResult>, ApiError> {
    let ttl = state
        .backend()
        .ttl(&key)
        .await?
        .ok_or_else(|| ApiError::no_key(&key))?;
    Ok(Json(TtlResult {
        ttl_ms: ttl_ms(ttl),
    }))
}

/// The body of `PUT /keys/{key}/ttl`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct TtlBody {
    /// Seconds, fractional allowed, from 0.001 to 315360000 (ten years).
    #[schema(value_type = f64, minimum = 0.001, maximum = 315_360_000)]
    ttl: serde_json::Number,
}

#[utoipa::path(
    put,
    path = "/keys/{key}/ttl",
    tag = "keys",
    summary = "Set a key's TTL",
    params(("key" = String, Path, description = "The key, percent-encoded: non-empty UTF-8, at most `--max-key-bytes` (default 512) bytes")),
    request_body(content = TtlBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The new TTL", body = TtlResult),
        (status = 400, description = "bad_request: bad key, or the body is not `{\"ttl\": seconds}` with 0.001 to 315360000 seconds", body = ErrorBody),
        (status = 403, description = "read_only: the server is read-only", body = ErrorBody),
        (status = 404, description = "not_found: the key does not exist", body = ErrorBody),
        (status = 413, description = "payload_too_large: the key or body is too large", body = ErrorBody),
    )
)]
async fn put_ttl(
    State(state): State<AppState>,
    _: Writable,
    Key(key): Key,
    body: Body,
) -> Result<Json<TtlResult>, ApiError> {
    let TtlBody { ttl } = body.json(r#"{"ttl": SECONDS}"#)?;
    let ttl = crate::config::parse_ttl(&ttl.to_string())
        .map_err(|e| ApiError::bad_request(format!("ttl: {e}")))?;
    if !state.backend().expire(&key, ttl).await? {
        return Err(ApiError::no_key(&key));
    }
    Ok(Json(TtlResult {
        ttl_ms: ttl_ms(Some(ttl)),
    }))
}

#[utoipa::path(
    delete,
    path = "/keys/{key}/ttl",
    tag = "keys",
    summary = "Remove a key's TTL",
    params(("key" = String, Path, description = "The key, percent-encoded: non-empty UTF-8, at most `--max-key-bytes` (default 512) bytes")),
    responses(
        (status = 200, description = "The key no longer expires (`ttl_ms` is null)", body = TtlResult),
        (status = 400, description = "bad_request: the key is not valid percent-encoded UTF-8", body = ErrorBody),
        (status = 403, description = "read_only: the server is read-only", body = ErrorBody),
        (status = 404, description = "not_found: the key does not exist", body = ErrorBody),
        (status = 413, description = "payload_too_large: the key is longer than `--max-key-bytes`", body = ErrorBody),
    )
)]
async fn delete_ttl(
    State(state): State<AppState>,
    _: Writable,
    Key(key): Key,
) -> Result<Json<TtlResult>, ApiError> {
    if !state.backend().clear_ttl(&key).await? {
        return Err(ApiError::no_key(&key));
    }
    Ok(Json(TtlResult { ttl_ms: None }))
}

/// The condition of a conditional `PUT /keys/{key}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// Only create the key; `409 conflict` if it exists.
    Absent,
    /// Only replace the key; `404 not_found` if it does not exist.
    Present,
}

/// One key with its value and remaining time to live.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyValue {
    /// The key.
    pub key: String,
    /// The value: any JSON value.
    #[schema(value_type = serde_json::Value)]
    pub value: StoredValue,
    /// Milliseconds left to live (rounded up), or `null` for a key without TTL.
    #[schema(required = true, minimum = 1)]
    pub ttl_ms: Option<u64>,
}

/// The outcome of `PUT /keys/{key}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Created {
    /// The key.
    pub key: String,
    /// `true` (status `201`) when the key is new, `false` (status `200`) when replaced.
    pub created: bool,
}

/// The outcome of `PUT /keys`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"stored": 1200, "evicted": 209}))]
pub struct Stored {
    /// How many pairs were written.
    pub stored: u64,
    /// How many live keys were evicted (least recently used first) to make room under
    /// `--capacity` while this write ran: at most one per key the write created, and
    /// possibly keys it wrote itself when it holds more new keys than the capacity.
    /// Expired keys removed to make room are not counted. A write that runs at the
    /// same moment as other evicting writes may count some of their evictions. Always
    /// 0 without `--capacity`, and with `--backend`, whose data Redis keeps.
    pub evicted: u64,
}

/// The outcome of `DELETE /keys`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Deleted {
    /// How many keys were deleted.
    pub deleted: u64,
}

/// The outcome of `POST /keys/{key}/incr`.
#[derive(Debug, Serialize, ToSchema)]
pub struct IncrResult {
    /// The key.
    pub key: String,
    /// The value after the increment.
    pub value: i64,
}

/// A key's time to live.
#[derive(Debug, Serialize, ToSchema)]
pub struct TtlResult {
    /// Milliseconds left to live (rounded up), or `null` for a key without TTL.
    #[schema(required = true, minimum = 1)]
    pub ttl_ms: Option<u64>,
}
