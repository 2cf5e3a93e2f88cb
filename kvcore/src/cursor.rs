//! Scan cursors: opaque tokens that name where a scan stopped.
//!
//! A cursor is a position in a total order of keys that does not depend on the other
//! keys present — (shard, key) — so a key live for the whole scan is returned exactly
//! once however the store changes between pages. The text form is `k1` followed by
//! the hex of: the shard as a big-endian `u32`, a flag byte (0: start of that shard,
//! 1: after the key that follows), and the key's UTF-8 bytes.

use crate::{Error, Result};

const PREFIX: &str = "k1";

/// Where a scan resumes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cursor {
    /// The shard to continue in.
    pub shard: usize,
    /// Continue after this key within the shard; `None`: from the shard's start.
    pub after: Option<String>,
}

impl Cursor {
    /// The text form handed to callers.
    pub fn encode(&self) -> String {
        let mut bytes = Vec::with_capacity(5 + self.after.as_ref().map_or(0, String::len));
        let shard = u32::try_from(self.shard).unwrap_or(u32::MAX);
        bytes.extend_from_slice(&shard.to_be_bytes());
        match &self.after {
            None => bytes.push(0),
            Some(key) => {
                bytes.push(1);
                bytes.extend_from_slice(key.as_bytes());
            }
        }
        let mut out = String::with_capacity(PREFIX.len() + bytes.len() * 2);
        out.push_str(PREFIX);
        for b in bytes {
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
        out
    }

    /// Parses a cursor for a store with `shards` shards; anything not issued by such
    /// a store is an [`Error::InvalidCursor`].
    pub fn decode(text: &str, shards: usize) -> Result<Cursor> {
        let invalid = || Error::InvalidCursor {
            cursor: text.chars().take(200).collect(),
        };
        let hex = text.strip_prefix(PREFIX).ok_or_else(invalid)?;
        if hex.len() % 2 != 0 || hex.len() < 10 {
            return Err(invalid());
        }
        let bytes = hex
            .as_bytes()
            .chunks(2)
            .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
            .collect::<Option<Vec<u8>>>()
            .ok_or_else(invalid)?;
        let shard = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
        if shard >= shards {
            return Err(invalid());
        }
        let after = match bytes[4] {
            0 if bytes.len() == 5 => None,
            1 => Some(String::from_utf8(bytes[5..].to_vec()).map_err(|_| invalid())?),
            _ => return Err(invalid()),
        };
        Ok(Cursor { shard, after })
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
            Cursor {
                shard: 0,
                after: None,
            },
            Cursor {
                shard: 63,
                after: Some(String::new()),
            },
            Cursor {
                shard: 7,
                after: Some("ключ/😀".into()),
            },
        ] {
            assert_eq!(Cursor::decode(&c.encode(), 64).unwrap(), c);
        }
    }

    #[test]
    fn refuses_foreign_text() {
        let good = Cursor {
            shard: 3,
            after: Some("a".into()),
        }
        .encode();
        for bad in [
            "",
            "k1",
            "abc",
            "k1zz",
            "k1000000",
            "k10000000002",
            "k1000000000",    // flag 0 + extra byte missing
            "k10000000001ff", // invalid UTF-8 key
            &good[..good.len() - 1],
            &good.to_uppercase(),
        ] {
            assert!(Cursor::decode(bad, 64).is_err(), "{bad:?} accepted");
        }
        assert!(
            Cursor::decode(
                &Cursor {
                    shard: 64,
                    after: None
                }
                .encode(),
                64
            )
            .is_err()
        );
        assert!(Cursor::decode("k1000000000061", 64).is_err()); // flag 0 with a key
    }
}
