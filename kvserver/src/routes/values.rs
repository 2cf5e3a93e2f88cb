//! The value store API: `/values`. Follows `--ttl`/`--sliding` (with `--ttl 300
//! --sliding`, keys live five minutes after their last touch). POST and PATCH are
//! all-or-nothing, also against concurrent writers: kvcore locks every shard the
//! batch touches before checking any key.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::body::{Pairs, StoredValue};
use crate::error::ApiError;
use crate::error::ErrorBody;
use crate::extract::{Body, Params, Writable};
use crate::idempotency::{self, Idempotency};
use crate::state::AppState;

/// The routes of this family.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::default().routes(routes!(read, insert, update))
}

#[utoipa::path(
    get,
    path = "/values",
    tag = "values",
    summary = "Read every pair, or some",
    description = "Without `keys` or `key`, every live pair (`{}` when empty). With them, the \
        pairs of the keys named by both together: `keys` splits at commas, each `key` is one key \
        as it is, commas included (`?key=x,y&key=z` reads the keys `x,y` and `z`). Restarts the \
        returned keys' TTLs with `--sliding`.",
    params(
        ("keys" = Option<String>, Query, description = "Comma-separated keys to read; empty items are ignored", example = "a,b"),
        ("key" = inline(Option<Vec<String>>), Query, style = Form, explode, description = "One key to read, as it is (it may contain commas); repeat the parameter for more keys. Empty values are ignored", example = json!(["x,y", "z"])),
    ),
    responses(
        (status = 200, description = "The pairs found", body = Pairs),
        (status = 400, description = "bad_request: `keys` and `key` name no key", body = ErrorBody),
        (status = 404, description = "not_found: none of the keys named exist", body = ErrorBody),
    )
)]
async fn read(State(state): State<AppState>, params: Params) -> Result<Json<Pairs>, ApiError> {
    let mut listed = params.all("keys").peekable();
    let mut keys: Vec<&str> = params.all("key").collect();
    if listed.peek().is_none() && keys.is_empty() {
        // Every live pair; each read restarts a sliding TTL.
        return Ok(Json(Pairs::of(state.backend().all().await?)));
    }
    keys.extend(listed.flat_map(|list| list.split(',')));
    keys.retain(|k| !k.is_empty());
    keys.sort_unstable();
    keys.dedup();
    if keys.is_empty() {
        return Err(ApiError::bad_request(
            "name at least one key: ?keys=a,b, or ?key=a&key=b for keys with commas",
        ));
    }
    let values = state.backend().get_many(&keys).await?;
    let found: Vec<_> = keys
        .iter()
        .zip(values)
        .filter_map(|(k, v)| Some((k.to_string(), StoredValue::new(v?))))
        .collect();
    if found.is_empty() {
        return Err(ApiError::not_found("none of the keys exist"));
    }
    Ok(Json(Pairs(found)))
}

#[utoipa::path(
    post,
    path = "/values",
    tag = "values",
    summary = "Add new pairs, all or nothing",
    description = "Adds every pair with the default TTL, or none if any key exists. With an \
        `Idempotency-Key` header, a retry of the same request (same body) within \
        `--idempotency-window` gets the first outcome (marked `Idempotent-Replayed: true`), \
        `201` or `409`, instead of writing again.",
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "1 to 255 visible ASCII characters naming this request; a retry with the same key gets the first outcome"),
    ),
    request_body(
        content = Pairs,
        content_type = "application/json",
        description = "A non-empty JSON object of `key: value` pairs",
    ),
    responses(
        (status = 201, description = "Every pair was added", body = Added),
        (status = 400, description = "bad_request: the body is not a non-empty object, a key is empty, or a bad `Idempotency-Key`. cross_slot: over a Redis Cluster, the keys are in several hash slots; nothing was added (give them a common hash tag)", body = ErrorBody),
        (status = 403, description = "read_only: the server is read-only", body = ErrorBody),
        (status = 409, description = "conflict: at least one key exists; nothing was added. idempotency_key_in_use: the first request with this key still runs", body = ErrorBody),
        (status = 413, description = "payload_too_large: a key, value or the body is too large", body = ErrorBody),
        (status = 422, description = "idempotency_key_reused: the `Idempotency-Key` came with another request", body = ErrorBody),
        (status = 504, description = "outcome_unknown: the write was sent and no answer came; it may or may not have been applied", body = ErrorBody),
    )
)]
async fn insert(
    State(state): State<AppState>,
    _: Writable,
    idem: Idempotency,
    body: Body,
) -> Result<Response, ApiError> {
    let items = body.object(state.limits())?;
    let idem = idem.with_body(&body.0);
    let done = state
        .backend()
        .insert_all_absent(items, idem.as_ref())
        .await?;
    let response = if done.value {
        let added = Added {
            message: ADDED.into(),
        };
        (StatusCode::CREATED, Json(added)).into_response()
    } else {
        ApiError::conflict("at least one of the keys already exists; nothing was added")
            .into_response()
    };
    Ok(idempotency::mark(response, done.replayed))
}

#[utoipa::path(
    patch,
    path = "/values",
    tag = "values",
    summary = "Replace existing pairs, all or nothing",
    description = "Replaces every value and restarts its TTL, or changes nothing if any key is missing.",
    request_body(
        content = Pairs,
        content_type = "application/json",
        description = "A non-empty JSON object of `key: value` pairs",
    ),
    responses(
        (status = 204, description = "Every pair was replaced"),
        (status = 400, description = "bad_request: the body is not a non-empty object, or a key is empty. cross_slot: over a Redis Cluster, the keys are in several hash slots; nothing was changed (give them a common hash tag)", body = ErrorBody),
        (status = 403, description = "read_only: the server is read-only", body = ErrorBody),
        (status = 404, description = "not_found: at least one key does not exist; nothing was changed", body = ErrorBody),
        (status = 413, description = "payload_too_large: a key, value or the body is too large", body = ErrorBody),
    )
)]
async fn update(
    State(state): State<AppState>,
    _: Writable,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let items = body.object(state.limits())?;
    if state.backend().update_all_present(items).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(
            "at least one of the keys does not exist; nothing was changed",
        ))
    }
}

/// The message of a `POST /values` that added its pairs.
const ADDED: &str = "Items successfully added";

/// The outcome of `POST /values`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Added {
    /// Always `Items successfully added`.
    #[schema(example = "Items successfully added")]
    pub message: String,
}
