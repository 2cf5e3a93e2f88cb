//! The value store API: `/values`. Follows `--ttl`/`--sliding` (with `--ttl 300
//! --sliding`, keys live five minutes after their last touch). POST and PATCH are
//! all-or-nothing, also against concurrent writers: kvcore locks every shard the
//! batch touches before checking any key.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use kvcore::Expiry;

use crate::body::{self, json};
use crate::error::ApiError;
use crate::extract::{Body, Params, Writable};
use crate::state::AppState;

/// The routes of this family.
pub fn routes() -> Router<AppState> {
    Router::new().route("/values", get(read).post(insert).patch(update))
}

async fn read(State(state): State<AppState>, params: Params) -> Result<Response, ApiError> {
    let store = state.store();
    let Some(list) = params.get("keys") else {
        // Every live pair, page by page; each read restarts a sliding TTL.
        let mut pairs = Vec::new();
        let mut cursor = None;
        loop {
            let page = store.scan(None, cursor.as_deref(), 10_000)?;
            pairs.extend(page.items);
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let body = body::object(pairs.iter().map(|(k, v)| (k.as_str(), v)));
        return Ok(json(StatusCode::OK, body));
    };
    let mut keys: Vec<&str> = list.split(',').filter(|k| !k.is_empty()).collect();
    keys.sort_unstable();
    keys.dedup();
    if keys.is_empty() {
        return Err(ApiError::bad_request("name at least one key: ?keys=a,b"));
    }
    let values = store.get_many(&keys);
    let found: Vec<_> = keys
        .iter()
        .zip(&values)
        .filter_map(|(k, v)| Some((*k, v.as_ref()?)))
        .collect();
    if found.is_empty() {
        return Err(ApiError::not_found("none of the keys exist"));
    }
    Ok(json(StatusCode::OK, body::object(found)))
}

async fn insert(
    State(state): State<AppState>,
    _: Writable,
    body: Body,
) -> Result<Response, ApiError> {
    let items = body.object(state.limits())?;
    if state
        .write(move |s| s.insert_all_absent(items, Expiry::Default))
        .await?
    {
        Ok(json(
            StatusCode::CREATED,
            r#"{"message":"Items successfully added"}"#.into(),
        ))
    } else {
        Err(ApiError::conflict(
            "at least one of the keys already exists; nothing was added",
        ))
    }
}

async fn update(
    State(state): State<AppState>,
    _: Writable,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let items = body.object(state.limits())?;
    if state
        .write(move |s| s.update_all_present(items, Expiry::Default))
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(
            "at least one of the keys does not exist; nothing was changed",
        ))
    }
}
