//! Scan cursors: opaque tokens that name where a scan stopped.
//!
//! A cursor is a position in a total order of keys that does not depend on the other
//! keys present — a number, then a key — so a key live for the whole scan is returned
//! exactly once however the store changes between pages. A [`MemoryStore`]'s number
//! is a shard; kvserver's Redis backend uses the same codec with Redis's `SCAN`
//! cursor as the number.
//!
//! The text form is a tag naming who issued the cursor, then the hex of: the number as
//! a big-endian `u64`, a flag byte (0: the start of that position, 1: after the key
//! that follows), and the key's UTF-8 bytes. Lower-case hex only, so that a cursor has
//! one spelling.
//!
//! ```
//! use kvcore::cursor::Cursor;
//!
//! let at = Cursor { at: 7, after: Some("user:42".into()) };
//! let text = at.encode("x1");
//! assert_eq!(Cursor::decode(&text, "x1"), Some(at));
//! assert_eq!(Cursor::decode(&text, "y1"), None); // another issuer's tag
//! assert_eq!(Cursor::decode("x1zz", "x1"), None);
//! ```
//!
//! [`MemoryStore`]: crate::MemoryStore

use crate::Error;

/// Where a scan resumes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// The position to continue at: a shard, a Redis `SCAN` cursor...
    pub at: u64,
    /// Continue after this key at that position; `None`: from the position's start.
    pub after: Option<String>,
}

/// The tag of the cursors a [`MemoryStore`](crate::MemoryStore) issues.
pub(crate) const MEMORY_TAG: &str = "k2";

impl Cursor {
    /// The text form handed to callers, starting with `tag`.
    pub fn encode(&self, tag: &str) -> String {
        let key = self.after.as_deref().unwrap_or("");
        let mut bytes = Vec::with_capacity(9 + key.len());
        bytes.extend_from_slice(&self.at.to_be_bytes());
        match &self.after {
            None => bytes.push(0),
            Some(key) => {
                bytes.push(1);
                bytes.extend_from_slice(key.as_bytes());
            }
        }
        let mut out = String::with_capacity(tag.len() + bytes.len() * 2);
        out.push_str(tag);
        for b in bytes {
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
        out
    }

    /// The error for `text` that is not a cursor this store issued (its first 200
    /// characters are kept, for the message).
    pub(crate) fn invalid(text: &str) -> Error {
        Error::InvalidCursor {
            cursor: text.chars().take(200).collect(),
        }
    }

    /// Parses text that [`Cursor::encode`] made with `tag`; `None` for anything else.
    pub fn decode(text: &str, tag: &str) -> Option<Cursor> {
        let hex = text.strip_prefix(tag)?;
        if hex.len() % 2 != 0 || hex.len() < 18 {
            return None;
        }
        let bytes = hex
            .as_bytes()
            .chunks(2)
            .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
            .collect::<Option<Vec<u8>>>()?;
        let at = u64::from_be_bytes(bytes[..8].try_into().ok()?);
        let after = match bytes[8] {
            0 if bytes.len() == 9 => None,
            1 => Some(String::from_utf8(bytes[9..].to_vec()).ok()?),
            _ => return None,
        };
        Some(Cursor { at, after })
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for c in [
            Cursor { at: 0, after: None },
            Cursor {
                at: 63,
                after: Some(String::new()),
            },
            Cursor {
                at: u64::MAX,
                after: Some("ключ/😀".into()),
            },
        ] {
            assert_eq!(Cursor::decode(&c.encode("k2"), "k2"), Some(c));
        }
    }

    #[test]
    fn refuses_foreign_text() {
        let good = Cursor {
            at: 3,
            after: Some("a".into()),
        }
        .encode("k2");
        for bad in [
            "",
            "k2",
            "abc",
            "k2zz",
            "k20000000000000000",     // no flag
            "k2000000000000000002",   // an unknown flag
            "k200000000000000000061", // flag 0 with a key
            "k2000000000000000001ff", // invalid UTF-8 key
            &good[..good.len() - 1],
            &good.to_uppercase(),
            &good.replacen("k2", "k1", 1), // another issuer's tag
        ] {
            assert_eq!(Cursor::decode(bad, "k2"), None, "{bad:?} accepted");
        }
    }
}
