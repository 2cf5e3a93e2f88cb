//! The key and value rules every front end applies before it writes.
//!
//! kvserver checks each request and `--load` record with these rules, and kvcli checks
//! each `set`, `incr` and imported record with them, so that whatever one of them
//! writes the other can read, serve and address: a key is non-empty and at most
//! [`Limits::max_key_bytes`] bytes of UTF-8; a value is at most
//! [`Limits::max_value_bytes`] bytes as stored (a JSON value's compact text). The defaults,
//! [`DEFAULT_MAX_KEY_BYTES`] and [`DEFAULT_MAX_VALUE_BYTES`], are the ones both
//! programs use unless told otherwise.
//!
//! The store itself does not apply them: an embedding program may store any key. A
//! failed check is a [`LimitError`], whose message names the rule and the sizes.
//!
//! ```
//! use kvcore::JsonText;
//! use kvcore::limits::{LimitError, Limits};
//!
//! let limits = Limits::default();
//! assert_eq!(limits.max_key_bytes, 512);
//! limits.check_key("user:42")?;
//! limits.check_value(&JsonText::parse(r#"{"name": "Ada"}"#)?)?;
//!
//! assert_eq!(limits.check_key(""), Err(LimitError::EmptyKey));
//! let err = Limits { max_key_bytes: 4, ..limits }.check_key("user:42").unwrap_err();
//! assert_eq!(err.to_string(), "a key of 7 bytes is longer than the limit of 4 bytes");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

/// The longest key both kvserver and kvcli accept by default, in bytes.
pub const DEFAULT_MAX_KEY_BYTES: usize = 512;

/// The largest value both kvserver and kvcli accept by default, in bytes of compact
/// JSON (1 MiB).
pub const DEFAULT_MAX_VALUE_BYTES: usize = 1 << 20;

/// The sizes a key and a value may have. [`Limits::default`] gives the defaults both
/// programs use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The longest key accepted, in bytes of UTF-8.
    pub max_key_bytes: usize,
    /// The largest value accepted, in bytes as stored (a JSON value's compact text).
    pub max_value_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_key_bytes: DEFAULT_MAX_KEY_BYTES,
            max_value_bytes: DEFAULT_MAX_VALUE_BYTES,
        }
    }
}

/// Why a key or a value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LimitError {
    /// The key is the empty string, which no HTTP route can name.
    #[error("keys must not be empty")]
    EmptyKey,

    /// The key is longer than [`Limits::max_key_bytes`].
    #[error("a key of {len} bytes is longer than the limit of {max} bytes")]
    KeyTooLong {
        /// The key's length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },

    /// The value's compact JSON is larger than [`Limits::max_value_bytes`].
    #[error("a value of {len} bytes is larger than the limit of {max} bytes")]
    ValueTooLarge {
        /// The value's length in bytes of compact JSON.
        len: usize,
        /// The limit.
        max: usize,
    },
}

impl LimitError {
    /// Whether the refusal is about size (a key or value too long) rather than shape
    /// (an empty key). kvserver answers the first `413` and the second `400`.
    ///
    /// ```
    /// use kvcore::limits::{LimitError, Limits};
    ///
    /// assert!(!LimitError::EmptyKey.is_too_large());
    /// let limits = Limits { max_key_bytes: 1, ..Limits::default() };
    /// assert!(limits.check_key("ab").unwrap_err().is_too_large());
    /// ```
    pub fn is_too_large(&self) -> bool {
        matches!(
            self,
            LimitError::KeyTooLong { .. } | LimitError::ValueTooLarge { .. }
        )
    }
}

impl Limits {
    /// Checks a key: non-empty, at most [`max_key_bytes`](Limits::max_key_bytes)
    /// bytes.
    ///
    /// ```
    /// use kvcore::limits::{LimitError, Limits};
    ///
    /// let limits = Limits::default();
    /// assert_eq!(limits.check_key(&"k".repeat(512)), Ok(()));
    /// assert_eq!(
    ///     limits.check_key(&"k".repeat(513)),
    ///     Err(LimitError::KeyTooLong { len: 513, max: 512 })
    /// );
    /// assert_eq!(limits.check_key(""), Err(LimitError::EmptyKey));
    /// ```
    pub fn check_key(&self, key: &str) -> Result<(), LimitError> {
        if key.is_empty() {
            return Err(LimitError::EmptyKey);
        }
        if key.len() > self.max_key_bytes {
            return Err(LimitError::KeyTooLong {
                len: key.len(),
                max: self.max_key_bytes,
            });
        }
        Ok(())
    }

    /// Checks a value: at most [`max_value_bytes`](Limits::max_value_bytes) bytes as
    /// stored, which for a [`JsonText`](crate::JsonText) is its compact JSON
    /// ([`JsonText::len`](crate::JsonText::len)) and for
    /// [`Bytes`](crate::Bytes) the bytes.
    ///
    /// ```
    /// use kvcore::JsonText;
    /// use kvcore::limits::{LimitError, Limits};
    ///
    /// let limits = Limits { max_value_bytes: 8, ..Limits::default() };
    /// // Compact JSON is measured: `[1, 2, 3]` is the 7 bytes `[1,2,3]`.
    /// assert_eq!(limits.check_value(&JsonText::parse("[1, 2, 3]")?), Ok(()));
    /// assert_eq!(
    ///     limits.check_value(&JsonText::string("too long")),
    ///     Err(LimitError::ValueTooLarge { len: 10, max: 8 })
    /// );
    /// # Ok::<(), kvcore::Error>(())
    /// ```
    pub fn check_value(&self, value: &(impl AsRef<[u8]> + ?Sized)) -> Result<(), LimitError> {
        let len = value.as_ref().len();
        if len > self.max_value_bytes {
            return Err(LimitError::ValueTooLarge {
                len,
                max: self.max_value_bytes,
            });
        }
        Ok(())
    }

    /// Checks a key, then its value: the check a record to be written passes.
    ///
    /// ```
    /// use kvcore::JsonText;
    /// use kvcore::limits::{LimitError, Limits};
    ///
    /// let limits = Limits::default();
    /// assert_eq!(limits.check_pair("a", &JsonText::string("x")), Ok(()));
    /// assert_eq!(limits.check_pair("", &JsonText::string("x")), Err(LimitError::EmptyKey));
    /// ```
    pub fn check_pair(
        &self,
        key: &str,
        value: &(impl AsRef<[u8]> + ?Sized),
    ) -> Result<(), LimitError> {
        self.check_key(key)?;
        self.check_value(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::JsonText;

    #[test]
    fn keys_are_measured_in_bytes_not_characters() {
        let limits = Limits {
            max_key_bytes: 4,
            ..Limits::default()
        };
        assert_eq!(limits.check_key("éé"), Ok(()));
        assert_eq!(
            limits.check_key("ééé"),
            Err(LimitError::KeyTooLong { len: 6, max: 4 })
        );
        assert_eq!(limits.check_key(" "), Ok(()));
    }

    #[test]
    fn the_key_is_checked_before_the_value() {
        let limits = Limits {
            max_key_bytes: 1,
            max_value_bytes: 1,
        };
        let big = JsonText::string("big");
        assert_eq!(
            limits.check_pair("long", &big),
            Err(LimitError::KeyTooLong { len: 4, max: 1 })
        );
        assert_eq!(
            limits.check_pair("k", &big),
            Err(LimitError::ValueTooLarge { len: 5, max: 1 })
        );
        assert!(LimitError::ValueTooLarge { len: 5, max: 1 }.is_too_large());
    }

    #[test]
    fn defaults_are_512_bytes_and_one_mebibyte() {
        let limits = Limits::default();
        assert_eq!(limits.max_key_bytes, 512);
        assert_eq!(limits.max_value_bytes, 1_048_576);
        let value = JsonText::string(&"v".repeat(1_048_574));
        assert_eq!(value.len(), 1_048_576);
        assert_eq!(limits.check_value(&value), Ok(()));
        let value = JsonText::string(&"v".repeat(1_048_575));
        assert!(limits.check_value(&value).is_err());
    }
}
