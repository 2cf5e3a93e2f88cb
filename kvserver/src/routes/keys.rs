//! The canonical key API: `/keys`, `/keys/{key}`, `/keys/{key}/incr`, `/keys/{key}/ttl`.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use kvcore::{Expiry, Pattern, SetOptions, SetOutcome};
use serde::Deserialize;

use crate::body::{self, json, push_str, ttl_ms};
use crate::error::ApiError;
use crate::extract::{Body, Key, Params, Writable};
use crate::state::AppState;

/// The routes of this family.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/keys", get(list).put(put_many).delete(delete_all))
        .route(
            "/keys/{key}",
            get(get_one).head(head_one).put(put_one).delete(delete_one),
        )
        .route("/keys/{key}/incr", post(incr))
        .route(
            "/keys/{key}/ttl",
            get(get_ttl).put(put_ttl).delete(delete_ttl),
        )
}

async fn get_one(State(state): State<AppState>, Key(key): Key) -> Result<Response, ApiError> {
    let (value, ttl) = state
        .store()
        .get_with_ttl(&key)
        .ok_or_else(|| ApiError::no_key(&key))?;
    let mut out = String::from("{\"key\":");
    push_str(&mut out, &key);
    out.push_str(",\"value\":");
    out.push_str(value.as_str());
    out.push_str(",\"ttl_ms\":");
    out.push_str(&ttl_ms(ttl));
    out.push('}');
    Ok(json(StatusCode::OK, out))
}

async fn head_one(State(state): State<AppState>, Key(key): Key) -> StatusCode {
    if state.store().contains(&key) {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    }
}

async fn put_one(
    State(state): State<AppState>,
    _: Writable,
    Key(key): Key,
    params: Params,
    body: Body,
) -> Result<Response, ApiError> {
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
    let k = key.clone();
    let outcome = state.write(move |s| s.set(&k, value, opts)).await?;
    let (status, created) = match outcome {
        SetOutcome::Created => (StatusCode::CREATED, true),
        SetOutcome::Replaced => (StatusCode::OK, false),
        SetOutcome::NotSet if if_absent => {
            return Err(ApiError::conflict(format!("key {key:?} already exists")));
        }
        SetOutcome::NotSet => return Err(ApiError::no_key(&key)),
    };
    let mut out = String::from("{\"key\":");
    push_str(&mut out, &key);
    out.push_str(if created {
        ",\"created\":true}"
    } else {
        ",\"created\":false}"
    });
    Ok(json(status, out))
}

async fn delete_one(
    State(state): State<AppState>,
    _: Writable,
    Key(key): Key,
) -> Result<StatusCode, ApiError> {
    let k = key.clone();
    if state.write(move |s| s.delete(&k)).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::no_key(&key))
    }
}

async fn put_many(
    State(state): State<AppState>,
    _: Writable,
    params: Params,
    body: Body,
) -> Result<Response, ApiError> {
    let expiry = params
        .ttl(&["expire_in", "ttl"])?
        .map_or(Expiry::Default, Expiry::After);
    let items = body.object(state.limits())?;
    let stored = state.write(move |s| s.set_many(items, expiry)).await?;
    Ok(json(StatusCode::OK, format!("{{\"stored\":{stored}}}")))
}

async fn delete_all(State(state): State<AppState>, _: Writable) -> Result<Response, ApiError> {
    let deleted = state.write(|s| s.clear()).await?;
    Ok(json(StatusCode::OK, format!("{{\"deleted\":{deleted}}}")))
}

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
    let page = state.store().scan(pattern.as_ref(), cursor, limit)?;
    let mut response = json(
        StatusCode::OK,
        body::object(page.items.iter().map(|(k, v)| (k.as_str(), v))),
    );
    if let Some(next) = page.next_cursor {
        // Cursors are hex text, always a valid header value.
        if let Ok(value) = HeaderValue::from_str(&next) {
            response.headers_mut().insert("x-next-cursor", value);
        }
    }
    Ok(response)
}

async fn incr(
    State(state): State<AppState>,
    _: Writable,
    Key(key): Key,
    params: Params,
) -> Result<Response, ApiError> {
    let by = match params.get("by") {
        None => 1,
        Some(text) => text.parse::<i64>().map_err(|_| {
            ApiError::bad_request(format!("by must be a 64-bit integer, not {text:?}"))
        })?,
    };
    let k = key.clone();
    let value = state.write(move |s| s.incr(&k, by)).await?;
    let mut out = String::from("{\"key\":");
    push_str(&mut out, &key);
    out.push_str(&format!(",\"value\":{value}}}"));
    Ok(json(StatusCode::OK, out))
}

async fn get_ttl(State(state): State<AppState>, Key(key): Key) -> Result<Response, ApiError> {
    let ttl = state
        .store()
        .ttl(&key)
        .ok_or_else(|| ApiError::no_key(&key))?;
    Ok(json(
        StatusCode::OK,
        format!("{{\"ttl_ms\":{}}}", ttl_ms(ttl)),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TtlBody {
    ttl: serde_json::Number,
}

async fn put_ttl(
    State(state): State<AppState>,
    _: Writable,
    Key(key): Key,
    body: Body,
) -> Result<Response, ApiError> {
    let TtlBody { ttl } = body.json()?;
    let ttl = crate::config::parse_ttl(&ttl.to_string())
        .map_err(|e| ApiError::bad_request(format!("ttl: {e}")))?;
    let k = key.clone();
    if !state.write(move |s| s.expire(&k, ttl)).await? {
        return Err(ApiError::no_key(&key));
    }
    Ok(json(
        StatusCode::OK,
        format!("{{\"ttl_ms\":{}}}", ttl_ms(Some(ttl))),
    ))
}

async fn delete_ttl(
    State(state): State<AppState>,
    _: Writable,
    Key(key): Key,
) -> Result<impl IntoResponse, ApiError> {
    let k = key.clone();
    if !state.write(move |s| s.persist(&k)).await? {
        return Err(ApiError::no_key(&key));
    }
    Ok(json(StatusCode::OK, "{\"ttl_ms\":null}".into()))
}
