//! Response bodies written as JSON text.
//!
//! Values are stored as compact JSON text, so responses splice that text in as it is
//! instead of parsing it back into a tree only to print it again.

use std::collections::HashMap;
use std::fmt::Write;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kvcore::JsonText;
use serde_json::json;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

/// A response with a JSON body.
pub fn json(status: StatusCode, body: String) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// Appends `s` as a JSON string.
pub fn push_str(out: &mut String, s: &str) {
    // Serializing a &str into a String cannot fail.
    let _ = write!(out, "{}", serde_json::Value::from(s));
}

/// `{"k1": v1, ...}` from pairs.
pub fn object<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a JsonText)>) -> String {
    let mut out = String::from("{");
    for (i, (key, value)) in pairs.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_str(&mut out, key);
        out.push(':');
        out.push_str(value.as_str());
    }
    out.push('}');
    out
}

/// A TTL in whole milliseconds, rounded up so a live key never shows 0, or `null`.
pub fn ttl_ms(ttl: Option<std::time::Duration>) -> String {
    match ttl {
        Some(d) => kvcore::ttl::millis(d).to_string(),
        None => "null".into(),
    }
}

/// Key-value pairs: a JSON object whose members are the keys and their values (any JSON).
#[derive(Debug)]
pub struct Pairs(pub HashMap<String, serde_json::Value>);

impl PartialSchema for Pairs {
    /// As the derive would write it, plus what the keys must be: non-empty.
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .description(Some(
                "Key-value pairs: a JSON object whose members are the keys (non-empty) and \
                 their values (any JSON).",
            ))
            .additional_properties(Some(AdditionalProperties::FreeForm(true)))
            .property_names(Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .min_length(Some(1)),
            ))
            .examples([json!({"a": 1, "b": {"nested": [true, null]}})])
            .into()
    }
}

impl ToSchema for Pairs {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_splice_values_and_escape_keys() {
        let v = JsonText::parse("[1, {\"a\": null}]").unwrap();
        let w = JsonText::string("x");
        assert_eq!(
            object([("k\"1", &v), ("ü", &w)]),
            r#"{"k\"1":[1,{"a":null}],"ü":"x"}"#
        );
        assert_eq!(object([]), "{}");
    }

    #[test]
    fn ttl_rounds_up() {
        use std::time::Duration;
        assert_eq!(ttl_ms(Some(Duration::from_micros(1))), "1");
        assert_eq!(ttl_ms(Some(Duration::from_millis(1500))), "1500");
        assert_eq!(ttl_ms(None), "null");
    }
}
