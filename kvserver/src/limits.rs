//! The request limits ([`Limits`]) and the key and value checks every route and the
//! dataset loader share: kvcore's rules ([`kvcore::limits`]) with their HTTP statuses.
//! This module imports nothing of the crate but the error type, so that the state,
//! the extractors and the loader can all use it.

use crate::error::ApiError;

/// Request limits from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest key, in bytes.
    pub max_key_bytes: usize,
    /// Largest value, in bytes as stored (for a JSON value, its compact text).
    pub max_value_bytes: usize,
    /// Most pairs per listing page.
    pub list_limit: usize,
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Requests handled at once.
    pub max_concurrency: usize,
    /// How long one request may take.
    pub request_timeout: std::time::Duration,
}

/// Keys follow kvcore's rules ([`kvcore::limits`]): non-empty (else `400`) and at
/// most `max_key_bytes` long (else `413`).
pub fn check_key(key: &str, limits: &Limits) -> Result<(), ApiError> {
    rules(limits).check_key(key).map_err(refused)
}

/// Values follow kvcore's rules: at most `max_value_bytes` bytes as stored, a JSON
/// value's compact text (else `413`).
pub fn check_value(value: &(impl AsRef<[u8]> + ?Sized), limits: &Limits) -> Result<(), ApiError> {
    rules(limits).check_value(value).map_err(refused)
}

fn rules(limits: &Limits) -> kvcore::limits::Limits {
    kvcore::limits::Limits {
        max_key_bytes: limits.max_key_bytes,
        max_value_bytes: limits.max_value_bytes,
    }
}

fn refused(e: kvcore::limits::LimitError) -> ApiError {
    if e.is_too_large() {
        ApiError::too_large(e.to_string())
    } else {
        ApiError::bad_request(e.to_string())
    }
}
