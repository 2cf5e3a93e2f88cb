//! What a store can hold.
//!
//! Any `Clone + Send + Sync + 'static` type can be a value once it implements
//! [`Value`]. The trait's two methods have defaults that say "not an integer", so a
//! plain `impl Value for MyType {}` is enough unless `incr` should work on it.
//!
//! Clones happen on every read hit, so cheap-to-clone types (`Arc<str>`, `Arc<[u8]>`,
//! [`Bytes`](crate::Bytes), [`JsonText`](crate::JsonText), small `Copy` types) make the
//! fastest stores.

use std::sync::Arc;

/// A type a store can hold.
///
/// `incr` uses [`Value::to_i64`] to read a counter and [`Value::from_i64`] to write
/// one back; types that cannot hold integers keep the defaults and `incr` reports
/// [`Error::NotAnInteger`](crate::Error::NotAnInteger) or
/// [`Error::IncrUnsupported`](crate::Error::IncrUnsupported).
///
/// ```
/// use kvcore::Value;
///
/// assert_eq!("42".to_string().to_i64(), Some(42));
/// assert_eq!("forty-two".to_string().to_i64(), None);
/// assert_eq!(String::from_i64(-7), Some("-7".to_string()));
/// ```
pub trait Value: Clone + Send + Sync + 'static {
    /// The integer this value holds, if it holds one.
    fn to_i64(&self) -> Option<i64> {
        None
    }

    /// A value holding `n`, if this type can represent integers.
    fn from_i64(n: i64) -> Option<Self> {
        let _ = n;
        None
    }

    /// How many bytes this value takes, for the default weight of a weight-bounded
    /// store (see [`weight`](crate::weight)): by default its size in memory
    /// (`size_of::<Self>()`); strings and byte strings, shared or not, give the length
    /// of their content, JSON values an estimate of theirs.
    ///
    /// Override it for a type that holds data on the heap, so that
    /// [`StoreBuilder::max_weight`](crate::StoreBuilder::max_weight) bounds what the
    /// values really take. It must give the same answer for the same value every time.
    ///
    /// ```
    /// use kvcore::Value;
    ///
    /// #[derive(Clone)]
    /// struct Thumbnail(Vec<u8>);
    ///
    /// impl Value for Thumbnail {
    ///     fn size_in_bytes(&self) -> usize {
    ///         self.0.len()
    ///     }
    /// }
    ///
    /// assert_eq!(Thumbnail(vec![0; 4096]).size_in_bytes(), 4096);
    /// assert_eq!("héllo".to_string().size_in_bytes(), 6);
    /// assert_eq!(7u64.size_in_bytes(), 8);
    /// ```
    fn size_in_bytes(&self) -> usize {
        size_of::<Self>()
    }
}

/// Strings hold integers as their decimal text, as Redis strings do.
impl Value for String {
    fn size_in_bytes(&self) -> usize {
        self.len()
    }
    fn to_i64(&self) -> Option<i64> {
        parse_decimal(self)
    }
    fn from_i64(n: i64) -> Option<Self> {
        Some(n.to_string())
    }
}

/// Shared strings hold integers as their decimal text.
impl Value for Arc<str> {
    fn size_in_bytes(&self) -> usize {
        self.len()
    }
    fn to_i64(&self) -> Option<i64> {
        parse_decimal(self)
    }
    fn from_i64(n: i64) -> Option<Self> {
        Some(Arc::from(n.to_string()))
    }
}

/// Byte strings hold integers as their decimal text.
impl Value for Vec<u8> {
    fn size_in_bytes(&self) -> usize {
        self.len()
    }
    fn to_i64(&self) -> Option<i64> {
        std::str::from_utf8(self).ok().and_then(parse_decimal)
    }
    fn from_i64(n: i64) -> Option<Self> {
        Some(n.to_string().into_bytes())
    }
}

/// Shared byte strings hold integers as their decimal text.
impl Value for Arc<[u8]> {
    fn size_in_bytes(&self) -> usize {
        self.len()
    }
    fn to_i64(&self) -> Option<i64> {
        std::str::from_utf8(self).ok().and_then(parse_decimal)
    }
    fn from_i64(n: i64) -> Option<Self> {
        Some(Arc::from(n.to_string().into_bytes()))
    }
}

/// Static strings hold integers as decimal text but cannot be created by `incr`.
impl Value for &'static str {
    fn size_in_bytes(&self) -> usize {
        self.len()
    }
    fn to_i64(&self) -> Option<i64> {
        parse_decimal(self)
    }
}

impl Value for i64 {
    fn to_i64(&self) -> Option<i64> {
        Some(*self)
    }
    fn from_i64(n: i64) -> Option<Self> {
        Some(n)
    }
}

impl Value for u64 {}
impl Value for bool {}
impl Value for f64 {}

/// JSON values hold integers as JSON numbers without a fraction. Their size is an
/// estimate: each node's own size plus the bytes of its strings and keys, counted
/// through the whole tree on each call.
impl Value for serde_json::Value {
    fn size_in_bytes(&self) -> usize {
        json_size(self)
    }
    fn to_i64(&self) -> Option<i64> {
        self.as_i64()
    }
    fn from_i64(n: i64) -> Option<Self> {
        Some(serde_json::Value::from(n))
    }
}

fn json_size(value: &serde_json::Value) -> usize {
    use serde_json::Value as J;
    size_of::<J>()
        + match value {
            J::Null | J::Bool(_) | J::Number(_) => 0,
            J::String(s) => s.len(),
            J::Array(items) => items.iter().map(json_size).sum(),
            J::Object(map) => map.iter().map(|(k, v)| k.len() + json_size(v)).sum(),
        }
}

/// Parses canonical decimal integer text: an optional `-`, digits, nothing else.
fn parse_decimal(s: &str) -> Option<i64> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_text() {
        assert_eq!(parse_decimal("0"), Some(0));
        assert_eq!(parse_decimal("-12"), Some(-12));
        assert_eq!(parse_decimal("+12"), None);
        assert_eq!(parse_decimal(" 1"), None);
        assert_eq!(parse_decimal(""), None);
        assert_eq!(parse_decimal("-"), None);
        assert_eq!(parse_decimal("9223372036854775808"), None);
    }

    #[test]
    fn json_numbers() {
        assert_eq!(serde_json::json!(5).to_i64(), Some(5));
        assert_eq!(serde_json::json!(5.5).to_i64(), None);
        assert_eq!(serde_json::json!("5").to_i64(), None);
        assert_eq!(serde_json::Value::from_i64(3), Some(serde_json::json!(3)));
    }

    #[test]
    fn bytes_and_shared() {
        assert_eq!(b"17".to_vec().to_i64(), Some(17));
        assert_eq!(vec![0xff].to_i64(), None);
        assert_eq!(Arc::<str>::from("8").to_i64(), Some(8));
        assert_eq!(u64::from_i64(1), None);
    }
}
