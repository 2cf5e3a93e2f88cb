//! Request parsing shared by the routes: extractors whose rejections are [`ApiError`]s,
//! and checks for keys, values, TTLs and JSON-object bodies.
//!
//! Extractors run in argument order, which is how handlers keep the API's order of
//! checks: [`Writable`] (403) comes before the key, query and [`Body`] (400/413).

use std::collections::HashMap;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use kvcore::JsonText;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use crate::config::parse_ttl;
use crate::error::ApiError;
use crate::limits::Limits;
pub use crate::limits::{check_key, check_value};
use crate::state::AppState;

/// Refuses the request with `403 read_only` on a read-only server.
#[derive(Debug, Clone, Copy)]
pub struct Writable;

impl FromRequestParts<AppState> for Writable {
    type Rejection = ApiError;

    async fn from_request_parts(_: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if state.read_only() {
            Err(ApiError::read_only())
        } else {
            Ok(Writable)
        }
    }
}

/// The `{key}` path parameter, percent-decoded and checked against the key rules.
#[derive(Debug, Clone)]
pub struct Key(pub String);

impl FromRequestParts<AppState> for Key {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Path(key) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad_request(format!("bad key in path: {e}")))?;
        check_key(&key, state.limits())?;
        Ok(Key(key))
    }
}

/// Query parameters, percent-decoded, in the order sent; a malformed query string is
/// `400`. Which names a route accepts is checked before the handler runs (see
/// `middleware.rs`).
#[derive(Debug, Clone, Default)]
pub struct Params(pub Vec<(String, String)>);

impl FromRequestParts<AppState> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Query(pairs) = Query::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad_request(format!("bad query string: {e}")))?;
        Ok(Params(pairs))
    }
}

impl Params {
    /// The parameter `name`, if given (the last one, if given more than once).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of the parameter `name`, in the order sent.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// A TTL parameter (seconds, 0.001 to ten years), trying each name in turn.
    pub fn ttl(&self, names: &[&str]) -> Result<Option<Duration>, ApiError> {
        names
            .iter()
            .find_map(|n| self.get(n).map(|v| (n, v)))
            .map(|(name, value)| {
                parse_ttl(value).map_err(|e| ApiError::bad_request(format!("{name}: {e}")))
            })
            .transpose()
    }

    /// A boolean flag parameter: `true`/`false` (absent: false).
    pub fn flag(&self, name: &str) -> Result<bool, ApiError> {
        match self.get(name) {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(other) => Err(ApiError::bad_request(format!(
                "{name} must be true or false, not {other:?}"
            ))),
        }
    }
}

/// The raw request body; too large is `413`, unreadable is `400`.
#[derive(Debug, Clone)]
pub struct Body(pub Bytes);

impl FromRequest<AppState> for Body {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        Bytes::from_request(req, state)
            .await
            .map(Body)
            .map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::too_large("the request body is larger than the server accepts")
                } else {
                    ApiError::bad_request(format!("could not read the request body: {e}"))
                }
            })
    }
}

impl Body {
    /// The body as one JSON value, checked against the value limit: its compact text,
    /// the bytes an HTTP write stores.
    pub fn value(&self, limits: &Limits) -> Result<kvcore::Bytes, ApiError> {
        let text = self.text()?;
        let value =
            JsonText::parse(text).map_err(|e| ApiError::bad_request(not_a_json_value(text, &e)))?;
        check_value(&value, limits)?;
        Ok(value.into())
    }

    /// The body as a non-empty JSON object of `key: value` pairs, each checked; each
    /// value as the compact text an HTTP write stores.
    pub fn object(&self, limits: &Limits) -> Result<Vec<(String, kvcore::Bytes)>, ApiError> {
        let pairs: HashMap<String, Box<RawValue>> = self.parse_object(OBJECT_SHAPE, true)?;
        if pairs.is_empty() {
            return Err(ApiError::bad_request("the body must name at least one key"));
        }
        pairs
            .into_iter()
            .map(|(key, raw)| {
                check_key(&key, limits)?;
                let value = JsonText::parse(raw.get()).map_err(ApiError::from)?;
                check_value(&value, limits)?;
                Ok((key, value.into()))
            })
            .collect()
    }

    /// The body deserialized as `T`, which must be a JSON object: serde would also
    /// fill a struct from an array of its fields in order, a shape no route takes.
    /// Anything else is `400`, whose message shows `shape`, the object the route takes
    /// (such as `{"ttl": SECONDS}`).
    pub fn json<T: DeserializeOwned>(&self, shape: &str) -> Result<T, ApiError> {
        self.parse_object(shape, false)
    }

    /// [`Body::json`]; when the object's values may be any JSON (`any_values`), a bare
    /// word where a value belongs is told how a string is sent.
    fn parse_object<T: DeserializeOwned>(
        &self,
        shape: &str,
        any_values: bool,
    ) -> Result<T, ApiError> {
        let text = self.text()?;
        if !text.trim_start().starts_with('{') {
            return Err(ApiError::bad_request(format!(
                "the body must be a JSON object: {shape}"
            )));
        }
        serde_json::from_str(text).map_err(|e| {
            let hint = any_values
                .then(|| bare_value_at(text, &e))
                .flatten()
                .and_then(bare_value_hint)
                .map(|hint| format!("; {hint}"))
                .unwrap_or_default();
            ApiError::bad_request(format!(
                "the body is not the JSON this route takes, {shape}: {e}{hint}"
            ))
        })
    }

    fn text(&self) -> Result<&str, ApiError> {
        std::str::from_utf8(&self.0)
            .map_err(|_| ApiError::bad_request("the body is not UTF-8 text"))
    }
}

/// Why `text` is not one JSON value: the parser's `error` (with its position), after a
/// hint when the text looks like a string sent without its quotes (`hello` rather than
/// `"hello"`), or a literal spelt in the wrong case (`True`).
fn not_a_json_value(text: &str, error: &dyn std::fmt::Display) -> String {
    match bare_value_hint(text) {
        Some(hint) => format!("the body must be one JSON value: {hint} ({error})"),
        None => format!("the body must be one JSON value: {error}"),
    }
}

/// What to send instead of `text`, written where a JSON value belongs, when it looks
/// like a string without its quotes or a literal in the wrong case; `None` when it
/// starts as JSON does (the parser's message says enough then).
fn bare_value_hint(text: &str) -> Option<String> {
    /// Longest bare text repeated back in quotes.
    const SHOWN: usize = 64;
    let trimmed = text.trim();
    let starts_json = trimmed
        .chars()
        .next()
        .is_none_or(|c| matches!(c, '{' | '[' | '"' | '-' | '0'..='9'));
    if starts_json {
        return None;
    }
    let lower = trimmed.to_ascii_lowercase();
    if matches!(lower.as_str(), "true" | "false" | "null") {
        return Some(format!("JSON spells it {lower}, in lower case"));
    }
    // 'hello' in single quotes is meant as the string hello.
    let word = trimmed
        .strip_prefix('\'')
        .and_then(|t| t.strip_suffix('\''))
        .unwrap_or(trimmed);
    Some(if word.chars().count() <= SHOWN && !word.contains('\n') {
        let quoted = serde_json::Value::from(word);
        format!("a string value is sent in double quotes, as {quoted}")
    } else {
        "a string value is sent in double quotes, as a JSON string".to_string()
    })
}

/// The text of a value that `error` found where a value of a JSON object or array
/// belongs (after `:`, `,` or `[`), up to the next `,`, `}`, `]` or line end: for
/// `{"a": hello}`, `hello`.
fn bare_value_at<'a>(text: &'a str, error: &serde_json::Error) -> Option<&'a str> {
    // serde_json counts lines from 1 and columns in bytes from 1.
    let before: usize = text
        .split('\n')
        .take(error.line().checked_sub(1)?)
        .map(|line| line.len() + 1)
        .sum();
    let at = before + error.column().checked_sub(1)?;
    let after_separator = text.get(..at)?.trim_end().ends_with([':', ',', '[']);
    if !after_separator {
        return None;
    }
    let rest = text.get(at..)?;
    let end = rest.find([',', '}', ']', '\n']).unwrap_or(rest.len());
    Some(&rest[..end])
}

/// The body of the routes that take many pairs, as their `400` messages show it.
const OBJECT_SHAPE: &str = r#"{"KEY": VALUE, ...}"#;
