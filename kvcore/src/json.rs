//! [`JsonText`]: a value type holding compact JSON text, as kvserver and kvcli store.
//!
//! Values are kept as the text of one JSON value with insignificant whitespace
//! removed and everything else — number spelling included — exactly as written, so a
//! value comes back byte for byte as it went in (minus whitespace). Cloning is a
//! reference-count increment.

use std::fmt;
use std::sync::Arc;

use serde_json::value::RawValue;

use crate::persist::ValueCodec;
use crate::{Error, Result, Value};

/// One JSON value as compact text.
///
/// ```
/// use kvcore::JsonText;
///
/// let v = JsonText::parse(r#"{ "a" : [1, 2.50, "x y"] }"#)?;
/// assert_eq!(v.as_str(), r#"{"a":[1,2.50,"x y"]}"#);
/// assert!(JsonText::parse("{oops").is_err());
/// # Ok::<(), kvcore::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct JsonText(Arc<str>);

impl JsonText {
    /// Checks that `text` is one JSON value and compacts it.
    pub fn parse(text: &str) -> Result<JsonText> {
        let raw: &RawValue = serde_json::from_str(text).map_err(|e| Error::InvalidJson {
            reason: e.to_string(),
        })?;
        Ok(JsonText::from_valid(raw.get()))
    }

    /// Compacts text already known to be one valid JSON value.
    pub(crate) fn from_valid(text: &str) -> JsonText {
        JsonText(Arc::from(compact(text)))
    }

    /// A JSON string holding `s`.
    ///
    /// ```
    /// assert_eq!(kvcore::JsonText::string("a\"b").as_str(), r#""a\"b""#);
    /// ```
    pub fn string(s: &str) -> JsonText {
        // Serializing a &str cannot fail.
        JsonText(Arc::from(serde_json::to_string(s).unwrap_or_default()))
    }

    /// The shared text, for a conversion that keeps it without a copy.
    pub(crate) fn into_shared(self) -> Arc<str> {
        self.0
    }

    /// The compact JSON text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Length of the compact text in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false: the shortest JSON value is one byte.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl AsRef<[u8]> for JsonText {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for JsonText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for JsonText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// JSON integers (`-?(0|[1-9][0-9]*)` within `i64`) are counters for `incr`. Its size
/// is the length of the compact text.
impl Value for JsonText {
    fn size_in_bytes(&self) -> usize {
        self.len()
    }

    fn to_i64(&self) -> Option<i64> {
        let s = self.as_str();
        let digits = s.strip_prefix('-').unwrap_or(s);
        let canonical = !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
            && (digits == "0" || !digits.starts_with('0'));
        if canonical { s.parse().ok() } else { None }
    }

    fn from_i64(n: i64) -> Option<Self> {
        Some(JsonText(Arc::from(n.to_string())))
    }
}

/// Stored as its text; decoding checks it is still valid JSON.
impl ValueCodec for JsonText {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.0.as_bytes());
    }

    fn decode(bytes: &[u8]) -> std::result::Result<Self, String> {
        let text = std::str::from_utf8(bytes).map_err(|e| e.to_string())?;
        JsonText::parse(text).map_err(|e| e.to_string())
    }
}

/// Whether valid JSON text has no whitespace outside strings.
pub(crate) fn is_compact(text: &str) -> bool {
    let mut in_string = false;
    let mut escaped = false;
    for b in text.bytes() {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
            return false;
        } else {
            in_string = b == b'"';
        }
    }
    true
}

/// Removes whitespace outside strings from valid JSON text.
fn compact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in text.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if !matches!(c, ' ' | '\t' | '\n' | '\r') {
            in_string = c == '"';
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compacts_outside_strings_only() {
        let v = JsonText::parse(" [ \"a b\\\" c\" , 1 ,\n{\"k\" :\tnull} ] ").unwrap();
        assert_eq!(v.as_str(), r#"["a b\" c",1,{"k":null}]"#);
        assert_eq!(
            JsonText::parse("123456789012345678901234567890")
                .unwrap()
                .as_str(),
            "123456789012345678901234567890"
        );
    }

    #[test]
    fn compact_text_is_told_apart() {
        for compact in [r#"{"a":[1,"x y\" z"]}"#, "1", r#""\\""#] {
            assert!(is_compact(compact), "{compact}");
        }
        for spaced in [r#"{"a": 1}"#, "[1,\n2]", r#"["\\" ,1]"#] {
            assert!(!is_compact(spaced), "{spaced}");
        }
    }

    #[test]
    fn integers_for_incr() {
        let int = |s: &str| JsonText::parse(s).unwrap().to_i64();
        assert_eq!(int("42"), Some(42));
        assert_eq!(int("-7"), Some(-7));
        assert_eq!(int("4.0"), None);
        assert_eq!(int("1e3"), None);
        assert_eq!(int("\"5\""), None);
        assert_eq!(int("9223372036854775808"), None);
        assert_eq!(JsonText::from_i64(-3).unwrap().as_str(), "-3");
    }

    #[test]
    fn rejects_non_json() {
        for bad in ["", "{", "[1,]", "nul", "1 2", "'x'"] {
            assert!(JsonText::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn codec_round_trip() {
        let v = JsonText::parse(r#"{"ü":"😀"}"#).unwrap();
        let mut buf = Vec::new();
        v.encode(&mut buf);
        assert_eq!(JsonText::decode(&buf).unwrap(), v);
        assert!(JsonText::decode(b"\xff").is_err());
    }
}
