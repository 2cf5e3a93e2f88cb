//! [`Bytes`]: a value type holding any bytes, as kvserver and kvcli store.
//!
//! A store of [`Bytes`] keeps each value exactly as written, byte for byte, whatever
//! it holds: the compact JSON text an HTTP client sent, or any bytes a Redis client
//! sent. Cloning is a reference-count increment.
//!
//! Two rules give the bytes a meaning:
//!
//! - **Integers** ([`Value`], for `incr`): canonical decimal text, as Redis reads it:
//!   an optional `-`, then `0` or digits not starting with `0`, within `i64` (`42`,
//!   `-7`; not `+1`, `007`, `-0`, ` 1`).
//! - **JSON** ([`Bytes::to_json`], for the HTTP API and kvcli): bytes that are one
//!   JSON value read as that value, compacted; other UTF-8 text reads as a JSON
//!   string of it; anything else reads as `{"$base64": "..."}`, the bytes in standard
//!   base64 (with padding), so that nothing is lost.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::value::RawValue;

use crate::persist::ValueCodec;
use crate::{JsonText, Value};

/// The member name of the JSON object that bytes which are not UTF-8 read as.
pub const BASE64_MEMBER: &str = "$base64";

/// Any bytes, shared: a cheap-to-clone value.
///
/// ```
/// use kvcore::{Bytes, JsonText, SetOptions, Store, StoreBuilder};
///
/// let store = StoreBuilder::new().build::<Bytes>()?;
/// store.set("raw", Bytes::from(&b"\x00\xffhi"[..]), SetOptions::new())?;
/// store.set("doc", JsonText::parse(r#"{"a": 1}"#)?.into(), SetOptions::new())?;
/// assert_eq!(store.get("raw").unwrap().as_bytes(), b"\x00\xffhi");
/// assert_eq!(store.get("doc").unwrap().as_bytes(), br#"{"a":1}"#);
/// # Ok::<(), kvcore::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Bytes(Arc<[u8]>);

impl Bytes {
    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The bytes as text, when they are UTF-8.
    ///
    /// ```
    /// use kvcore::Bytes;
    ///
    /// assert_eq!(Bytes::from("héllo").to_str(), Some("héllo"));
    /// assert_eq!(Bytes::from(&b"\xff"[..]).to_str(), None);
    /// ```
    pub fn to_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }

    /// How many bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none (a Redis client may store the empty string).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The JSON value these bytes read as, as compact text:
    ///
    /// - bytes that are one JSON value (surrounding whitespace allowed): that value,
    ///   with whitespace outside strings removed and everything else as it is;
    /// - other UTF-8 text: a JSON string holding it;
    /// - anything else: `{"$base64": "..."}`, the bytes in standard base64 with
    ///   padding ([`BASE64_MEMBER`]).
    ///
    /// Compact JSON text, as an HTTP client's value is stored, comes back borrowed,
    /// checked but not copied.
    ///
    /// ```
    /// use kvcore::Bytes;
    ///
    /// let json = |b: &[u8]| Bytes::from(b).to_json().get().to_owned();
    /// assert_eq!(json(b"42"), "42");
    /// assert_eq!(json(br#"{ "a" : [1, 2.50] }"#), r#"{"a":[1,2.50]}"#);
    /// assert_eq!(json(br#""quoted""#), r#""quoted""#);
    /// assert_eq!(json(b"hello world"), r#""hello world""#);
    /// assert_eq!(json(b""), r#""""#);
    /// assert_eq!(json(b"\x00\xff"), r#"{"$base64":"AP8="}"#);
    /// ```
    pub fn to_json(&self) -> Cow<'_, RawValue> {
        if let Ok(raw) = serde_json::from_slice::<&RawValue>(&self.0) {
            let text = raw.get();
            if text.len() == self.0.len() && crate::json::is_compact(text) {
                return Cow::Borrowed(raw);
            }
            return owned(JsonText::from_valid(text).as_str().to_owned());
        }
        let text = match std::str::from_utf8(&self.0) {
            Ok(text) => serde_json::Value::from(text).to_string(),
            Err(_) => serde_json::json!({ BASE64_MEMBER: STANDARD.encode(&self.0) }).to_string(),
        };
        owned(text)
    }

    /// [`Bytes::to_json`] as a [`JsonText`], as a dataset record holds it.
    ///
    /// ```
    /// use kvcore::Bytes;
    ///
    /// assert_eq!(Bytes::from("hi").to_json_text().as_str(), r#""hi""#);
    /// ```
    pub fn to_json_text(&self) -> JsonText {
        JsonText::from_valid(self.to_json().get())
    }
}

/// JSON text this module built or compacted, which is valid by construction.
fn owned(text: String) -> Cow<'static, RawValue> {
    match RawValue::from_string(text) {
        Ok(raw) => Cow::Owned(raw),
        // Unreachable: the text is valid JSON. `null` rather than a panic all the same.
        Err(_) => Cow::Owned(RawValue::NULL.to_owned()),
    }
}

impl AsRef<[u8]> for Bytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl std::ops::Deref for Bytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl From<&[u8]> for Bytes {
    fn from(bytes: &[u8]) -> Bytes {
        Bytes(Arc::from(bytes))
    }
}

impl<const N: usize> From<&[u8; N]> for Bytes {
    fn from(bytes: &[u8; N]) -> Bytes {
        Bytes(Arc::from(&bytes[..]))
    }
}

impl From<Vec<u8>> for Bytes {
    fn from(bytes: Vec<u8>) -> Bytes {
        Bytes(Arc::from(bytes))
    }
}

impl From<Arc<[u8]>> for Bytes {
    fn from(bytes: Arc<[u8]>) -> Bytes {
        Bytes(bytes)
    }
}

impl From<&str> for Bytes {
    fn from(text: &str) -> Bytes {
        Bytes(Arc::from(text.as_bytes()))
    }
}

impl From<String> for Bytes {
    fn from(text: String) -> Bytes {
        Bytes(Arc::from(text.into_bytes()))
    }
}

/// The compact JSON text, byte for byte (shared, not copied).
impl From<JsonText> for Bytes {
    fn from(json: JsonText) -> Bytes {
        Bytes(Arc::from(json.into_shared()))
    }
}

/// As a byte string literal: `b"hi\xff"`.
impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b\"{}\"", self.0.escape_ascii())
    }
}

/// Canonical decimal text is a counter for `incr`, as Redis reads it.
///
/// ```
/// use kvcore::{Bytes, Value};
///
/// assert_eq!(Bytes::from("-42").to_i64(), Some(-42));
/// for not_canonical in ["+1", "007", "-0", " 1", "1.0", "", "9223372036854775808"] {
///     assert_eq!(Bytes::from(not_canonical).to_i64(), None, "{not_canonical:?}");
/// }
/// assert_eq!(Bytes::from_i64(7), Some(Bytes::from("7")));
/// ```
impl Value for Bytes {
    fn to_i64(&self) -> Option<i64> {
        let digits = self.0.strip_prefix(b"-").unwrap_or(&self.0);
        let canonical = match digits {
            [b'0'] => self.0.len() == 1,
            [b'1'..=b'9', rest @ ..] => rest.iter().all(u8::is_ascii_digit),
            _ => false,
        };
        if !canonical {
            return None;
        }
        std::str::from_utf8(&self.0).ok()?.parse().ok()
    }

    fn from_i64(n: i64) -> Option<Self> {
        Some(Bytes::from(n.to_string()))
    }

    /// The number of bytes, for a weight-bounded store's default weight.
    fn size_in_bytes(&self) -> usize {
        self.0.len()
    }
}

/// Stored as they are. A value another type stored as text (a [`JsonText`], a
/// `String`) decodes as its bytes, so a data directory written with such a type opens
/// as a store of `Bytes`.
impl ValueCodec for Bytes {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0);
    }

    fn decode(bytes: &[u8]) -> std::result::Result<Self, String> {
        Ok(Bytes::from(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(b: &[u8]) -> String {
        Bytes::from(b).to_json().get().to_owned()
    }

    #[test]
    fn compact_json_is_borrowed_and_the_rest_is_rendered() {
        let compact = Bytes::from(r#"{"a":[1,"x y"]}"#);
        assert!(matches!(compact.to_json(), Cow::Borrowed(_)));
        assert!(matches!(Bytes::from(" 1").to_json(), Cow::Owned(_)));
        assert!(matches!(Bytes::from("[1, 2]").to_json(), Cow::Owned(_)));
        assert_eq!(json(b"[1, \"a, b\"]"), r#"[1,"a, b"]"#);
        assert_eq!(json(b" 1 "), "1");
        assert_eq!(json(b"1 2"), r#""1 2""#);
        assert_eq!(json(b"\"a\\u00e9\""), "\"a\\u00e9\"");
        assert_eq!(json(b"tab\there \"q\""), r#""tab\there \"q\"""#);
        assert_eq!(json(b"null"), "null");
        assert_eq!(json(b"NaN"), r#""NaN""#);
        assert_eq!(json("thé".as_bytes()), r#""thé""#);
    }

    #[test]
    fn bytes_that_are_not_utf8_are_base64_and_come_back_whole() {
        let raw: Vec<u8> = (0..=255).collect();
        let shown: serde_json::Value = serde_json::from_str(&json(&raw)).unwrap();
        let encoded = shown[BASE64_MEMBER].as_str().unwrap();
        assert_eq!(STANDARD.decode(encoded).unwrap(), raw);
        assert_eq!(shown.as_object().unwrap().len(), 1);
    }

    #[test]
    fn integers_are_canonical_decimal_text() {
        let int = |s: &[u8]| Bytes::from(s).to_i64();
        assert_eq!(int(b"0"), Some(0));
        assert_eq!(int(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(int(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b"-"[..],
            b"00",
            b"01",
            b"-01",
            b"1e3",
            b"\xff",
            b"12 ",
            b"\"5\"",
        ] {
            assert_eq!(int(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn codec_keeps_every_byte_and_reads_json_text() {
        let v = Bytes::from(&b"\x00\xff\r\n"[..]);
        let mut buf = Vec::new();
        v.encode(&mut buf);
        assert_eq!(Bytes::decode(&buf).unwrap(), v);
        let mut old = Vec::new();
        JsonText::parse(r#"{"a": "é"}"#).unwrap().encode(&mut old);
        assert_eq!(
            Bytes::decode(&old).unwrap().as_bytes(),
            r#"{"a":"é"}"#.as_bytes()
        );
    }

    #[test]
    fn debug_reads_as_a_byte_string() {
        assert_eq!(
            format!("{:?}", Bytes::from(&b"hi\"\xff"[..])),
            r#"b"hi\"\xff""#
        );
    }
}
