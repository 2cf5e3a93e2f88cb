//! UUID lookup: `POST /get_value` with `{"key": "<uuid v4>"}`.
//!
//! UUIDs are case-insensitive on input: the lower-case form is looked up first, then
//! the text as given, then the upper-case form.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::body::StoredValue;
use crate::error::ApiError;
use crate::error::ErrorBody;
use crate::extract::Body;
use crate::state::AppState;

/// The routes of this family.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::default().routes(routes!(get_value))
}

/// The body as read, before its key is checked.
#[derive(Deserialize)]
struct LookupRequest {
    key: Option<serde_json::Value>,
}

#[utoipa::path(
    post,
    path = "/get_value",
    tag = "lookup",
    summary = "Look up the value of a UUID key",
    description = "UUIDs are case-insensitive: the lower-case form is tried first, then the text \
        as given, then the upper-case form.",
    request_body(content = Lookup, content_type = "application/json"),
    responses(
        (status = 200, description = "The value", body = LookupResult),
        (status = 400, description = "bad_request: the body is not JSON, has no `key`, or `key` is not a UUID v4", body = ErrorBody),
        (status = 404, description = "not_found: no value for the UUID", body = ErrorBody),
        (status = 413, description = "payload_too_large: the body is too large", body = ErrorBody),
    )
)]
async fn get_value(
    State(state): State<AppState>,
    body: Body,
) -> Result<Json<LookupResult>, ApiError> {
    let LookupRequest { key } = body.json(r#"{"key": "UUID"}"#)?;
    let key = match key {
        Some(serde_json::Value::String(k)) => k,
        Some(_) => {
            return Err(ApiError::bad_request(
                "key must be a string holding a UUID v4",
            ));
        }
        None => {
            return Err(ApiError::bad_request(
                "the body needs a key: {\"key\": \"<uuid v4>\"}",
            ));
        }
    };
    if !is_uuid_v4(&key) {
        return Err(ApiError::bad_request(format!("{key:?} is not a UUID v4")));
    }
    let lower = key.to_ascii_lowercase();
    let upper = key.to_ascii_uppercase();
    let mut value = None;
    for candidate in [&lower, &key, &upper] {
        value = state.backend().get_with_ttl(candidate).await?;
        if value.is_some() {
            break;
        }
    }
    let (value, _) = value.ok_or_else(|| ApiError::not_found(format!("no value for {key:?}")))?;
    Ok(Json(LookupResult {
        value: StoredValue::new(value),
    }))
}

/// `xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx`, hex digits in either case.
pub fn is_uuid_v4(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
        && b[14] == b'4'
        && matches!(b[19], b'8' | b'9' | b'a' | b'b' | b'A' | b'B')
}

/// The body of `POST /get_value`.
#[derive(Debug, ToSchema)]
pub struct Lookup {
    /// A UUID v4, in any letter case.
    #[schema(
        format = "uuid",
        pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-4[0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}$",
        example = "0b0c7a8e-5c4d-4f3a-9b2e-1a2b3c4d5e6f"
    )]
    pub key: String,
}

/// The outcome of `POST /get_value`.
#[derive(Debug, Serialize, ToSchema)]
pub struct LookupResult {
    /// The value stored under the UUID: any JSON value.
    #[schema(value_type = serde_json::Value)]
    pub value: StoredValue,
}

#[cfg(test)]
mod tests {
    use super::is_uuid_v4;

    #[test]
    fn uuid_v4_shape() {
        assert!(is_uuid_v4("0b0c7a8e-5c4d-4f3a-9b2e-1a2b3c4d5e6f"));
        assert!(is_uuid_v4("0B0C7A8E-5C4D-4F3A-AB2E-1A2B3C4D5E6F"));
        assert!(!is_uuid_v4("0b0c7a8e-5c4d-1f3a-9b2e-1a2b3c4d5e6f")); // version 1
        assert!(!is_uuid_v4("0b0c7a8e-5c4d-4f3a-7b2e-1a2b3c4d5e6f")); // variant
        assert!(!is_uuid_v4("0b0c7a8e5c4d4f3a9b2e1a2b3c4d5e6f"));
        assert!(!is_uuid_v4("0b0c7a8e-5c4d-4f3a-9b2e-1a2b3c4d5e6g"));
        assert!(!is_uuid_v4(""));
    }
}
