//! What response bodies are made of: [`StoredValue`], the one way a stored value is
//! shown, and [`Pairs`], a JSON object of keys and their stored values.
//!
//! Each route's response types live next to its handler, derive `Serialize` and
//! `ToSchema`, and are both what the handler returns (as `Json<T>`) and what its
//! `#[utoipa::path]` documents, so the OpenAPI document and the wire cannot drift.
//! Every stored value they hold is a [`StoredValue`]: a value is spliced into the body
//! as the JSON text it is, never parsed into a tree only to be printed again.

use kvcore::JsonText;
use serde::ser::{Error as _, SerializeMap};
use serde::{Serialize, Serializer};
use serde_json::json;
use serde_json::value::RawValue;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

/// A stored value as a response shows it: the JSON it holds, spliced in as it is.
///
/// Response types declare a field of this type with
/// `#[schema(value_type = serde_json::Value)]`: any JSON value.
#[derive(Debug, Clone)]
pub struct StoredValue(JsonText);

impl StoredValue {
    /// The value stored as `value`.
    pub fn new(value: JsonText) -> StoredValue {
        StoredValue(value)
    }
}

impl Serialize for StoredValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // A borrowed RawValue checks the text and writes it out unchanged: no tree
        // is built. The text is valid JSON (JsonText holds nothing else).
        let raw: &RawValue = serde_json::from_str(self.0.as_str()).map_err(S::Error::custom)?;
        raw.serialize(serializer)
    }
}

/// Key-value pairs: a JSON object whose members are the keys and their values, in
/// the order given. The request bodies of the batch writes have the same shape, and
/// document it with this type.
#[derive(Debug, Default)]
pub struct Pairs(pub Vec<(String, StoredValue)>);

impl Pairs {
    /// The pairs of `items`, in order.
    pub fn of(items: impl IntoIterator<Item = (String, JsonText)>) -> Pairs {
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

    #[test]
    fn pairs_splice_values_and_escape_keys_in_order() {
        let v = JsonText::parse("[1, {\"a\": null}]").unwrap();
        let w = JsonText::string("x");
        let pairs = Pairs::of([("k\"1".to_string(), v), ("ü".to_string(), w)]);
        assert_eq!(
            serde_json::to_string(&pairs).unwrap(),
            r#"{"k\"1":[1,{"a":null}],"ü":"x"}"#
        );
        assert_eq!(serde_json::to_string(&Pairs::default()).unwrap(), "{}");
    }

    #[test]
    fn numbers_keep_their_spelling() {
        let v =
            StoredValue::new(JsonText::parse("[1.50, 123456789012345678901234567890]").unwrap());
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            "[1.50,123456789012345678901234567890]"
        );
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
