//! What response bodies are made of: [`StoredValue`], the one way a stored value is
//! shown, and [`Pairs`], a JSON object of keys and their stored values.
//!
//! Each route's response types live next to its handler, derive `Serialize` and
//! `ToSchema`, and are both what the handler returns (as `Json<T>`) and what its
//! `#[utoipa::path]` documents, so the OpenAPI document and the wire cannot drift.
//!
//! Values are bytes at the backend; every stored value a response holds is a
//! [`StoredValue`], which shows it by one rule ([`kvcore::Bytes::to_json`]): bytes
//! that are one JSON value (every value an HTTP client wrote: its compact text) as
//! that value, spliced in as it is, never parsed into a tree only to be printed
//! again; other UTF-8 text as a JSON string of it; anything else as
//! `{"$base64": "..."}`.

use kvcore::Bytes;
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::json;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

/// A stored value as a response shows it: the JSON its bytes read as (see the
/// module docs).
///
/// Response types declare a field of this type with
/// `#[schema(value_type = serde_json::Value)]`: any JSON value.
#[derive(Debug, Clone)]
pub struct StoredValue(Bytes);

impl StoredValue {
    /// The value stored as `value`.
    pub fn new(value: Bytes) -> StoredValue {
        StoredValue(value)
    }
}

impl Serialize for StoredValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // A RawValue is written out as it is: compact JSON text is checked once,
        // borrowed and spliced in; no tree is built.
        self.0.to_json().serialize(serializer)
    }
}

/// Key-value pairs: a JSON object whose members are the keys and their values, in
/// the order given. The request bodies of the batch writes have the same shape, and
/// document it with this type.
#[derive(Debug, Default)]
pub struct Pairs(pub Vec<(String, StoredValue)>);

impl Pairs {
    /// The pairs of `items`, in order.
    pub fn of(items: impl IntoIterator<Item = (String, Bytes)>) -> Pairs {
        Pairs(
            items
                .into_iter()
                .map(|(key, value)| (key, StoredValue::new(value)))
                .collect(),
        )
    }
}

impl Serialize for Pairs {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in &self.0 {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

impl PartialSchema for Pairs {
    /// An object of any values, whose keys are not empty.
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

/// A TTL in whole milliseconds, rounded up so a live key never shows 0.
pub fn ttl_ms(ttl: Option<std::time::Duration>) -> Option<u64> {
    ttl.map(kvcore::ttl::millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(bytes: &[u8]) -> String {
        serde_json::to_string(&StoredValue::new(Bytes::from(bytes))).unwrap()
    }

    #[test]
    fn pairs_splice_values_and_escape_keys_in_order() {
        let pairs = Pairs::of([
            ("k\"1".to_string(), Bytes::from(r#"[1,{"a":null}]"#)),
            ("ü".to_string(), Bytes::from(r#""x""#)),
            ("t".to_string(), Bytes::from("text")),
        ]);
        assert_eq!(
            serde_json::to_string(&pairs).unwrap(),
            r#"{"k\"1":[1,{"a":null}],"ü":"x","t":"text"}"#
        );
        assert_eq!(serde_json::to_string(&Pairs::default()).unwrap(), "{}");
    }

    #[test]
    fn values_show_as_the_json_they_hold_else_as_strings_else_as_base64() {
        assert_eq!(
            shown(b"[1.50,123456789012345678901234567890]"),
            "[1.50,123456789012345678901234567890]"
        );
        assert_eq!(shown(br#"{ "a" : 1 }"#), r#"{"a":1}"#);
        assert_eq!(shown(b"42"), "42");
        assert_eq!(shown(b"hello"), r#""hello""#);
        assert_eq!(shown(b"\x00\xffz"), r#"{"$base64":"AP96"}"#);
    }

    #[test]
    fn ttl_rounds_up() {
        use std::time::Duration;
        assert_eq!(ttl_ms(Some(Duration::from_micros(1))), Some(1));
        assert_eq!(ttl_ms(Some(Duration::from_nanos(1))), Some(1));
        assert_eq!(ttl_ms(Some(Duration::from_millis(1500))), Some(1500));
        assert_eq!(ttl_ms(None), None);
    }
}
