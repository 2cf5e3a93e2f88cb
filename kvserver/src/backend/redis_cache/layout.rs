//! Where kvserver keeps what it stores beside the data, so that every script touches
//! the keys of one hash slot only.
//!
//! Redis Cluster puts a key in one of 16 384 hash slots: CRC16 of the key, or of its
//! hash tag when it has one (the text between its first `{` and the first `}` after
//! it, when that text is not empty), modulo 16 384. A script may only touch keys of
//! one slot. So whatever kvserver keeps beside a key lives in bookkeeping keys of
//! that key's slot, named with a tag that hashes to the slot:
//!
//! - `__kv__:{T}:ttl`: with `--sliding`, a hash of key → the TTL length (ms) a read
//!   restarts the key at, for the keys of the slot written with a TTL other than the
//!   default;
//! - `__kv__:{T}:idem` and `__kv__:{T}:idem:expiry`: the outcomes of writes sent with
//!   an `Idempotency-Key` to keys of the slot (a hash of key → `fingerprint:outcome`,
//!   a sorted set of their deadlines);
//!
//! where `T` is [`slot_tag`]: the first string of `[0-9a-z]`, shortest first, whose
//! CRC16 falls in the slot (the same on every kvserver). The hit counters are one
//! hash, `__kv__:hits`, in its own slot; the outcomes of hits live beside it.
//!
//! Over one Redis every slot shares one set of bookkeeping keys, `__kv__:ttl`,
//! `__kv__:idem` and `__kv__:idem:expiry`: the names kvserver has always used, so a
//! single Redis written by an earlier release needs no migration, and the scripts are
//! the same in both layouts (they take these names as `KEYS`).

use std::sync::OnceLock;

/// Hash slots of a Redis Cluster.
pub const SLOTS: u16 = 16_384;

/// The hit counters: a hash of path → count.
pub(super) const HITS_KEY: &str = "__kv__:hits";

/// How the bookkeeping keys are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Layout {
    /// One Redis: one set of bookkeeping keys for every key.
    Single,
    /// A Redis Cluster: one set per hash slot, in that slot.
    Cluster,
}

/// The bookkeeping keys of one slot (or, over one Redis, of every key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Books {
    /// Sliding TTL lengths.
    pub slide: String,
    /// Idempotency outcomes.
    pub idem: String,
    /// Their deadlines.
    pub idem_expiry: String,
}

impl Books {
    fn named(tag: Option<&str>) -> Books {
        let base = match tag {
            Some(t) => format!("__kv__:{{{t}}}:"),
            None => "__kv__:".to_owned(),
        };
        Books {
            slide: format!("{base}ttl"),
            idem: format!("{base}idem"),
            idem_expiry: format!("{base}idem:expiry"),
        }
    }
}

impl Layout {
    /// The bookkeeping keys beside `key`.
    pub(super) fn books(self, key: &str) -> Books {
        match self {
            Layout::Single => Books::named(None),
            Layout::Cluster => Books::named(Some(slot_tag(slot(key)))),
        }
    }

    /// The bookkeeping keys of slot `slot` (over one Redis, the only set).
    pub(super) fn books_of_slot(self, slot: u16) -> Books {
        match self {
            Layout::Single => Books::named(None),
            Layout::Cluster => Books::named(Some(slot_tag(slot))),
        }
    }
}

/// The part of `key` that decides its slot: its hash tag when it has a non-empty one,
/// else the whole key (Redis's `keyHashSlot`).
pub fn hash_part(key: &[u8]) -> &[u8] {
    if let Some(open) = key.iter().position(|&b| b == b'{')
        && let Some(len) = key[open + 1..].iter().position(|&b| b == b'}')
        && len > 0
    {
        return &key[open + 1..open + 1 + len];
    }
    key
}

/// The hash slot of `key`, as `CLUSTER KEYSLOT` computes it.
pub fn slot(key: &str) -> u16 {
    crc16(hash_part(key.as_bytes())) % SLOTS
}

/// CRC16-CCITT (XModem), the checksum Redis Cluster hashes keys with.
fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in bytes {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// A short tag (no braces) that hashes to `slot`: the first string over `[0-9a-z]`,
/// shortest first, then in alphabet order, whose CRC16 falls in the slot. The same
/// on every kvserver of every version that uses this layout.
pub fn slot_tag(slot: u16) -> &'static str {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    let tags = TAGS.get_or_init(|| {
        const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
        let mut tags: Vec<Option<String>> = vec![None; usize::from(SLOTS)];
        let mut missing = usize::from(SLOTS);
        let mut word: Vec<u8> = Vec::new();
        // Every word of each length in turn; four letters cover every slot.
        'lengths: for len in 1..=4 {
            word.clear();
            word.resize(len, ALPHABET[0]);
            let mut digits = vec![0usize; len];
            loop {
                let s = usize::from(crc16(&word) % SLOTS);
                if tags[s].is_none() {
                    tags[s] = Some(String::from_utf8_lossy(&word).into_owned());
                    missing -= 1;
                    if missing == 0 {
                        break 'lengths;
                    }
                }
                // The next word in alphabet order, or the next length.
                let mut i = len;
                loop {
                    if i == 0 {
                        continue 'lengths;
                    }
                    i -= 1;
                    digits[i] += 1;
                    if digits[i] < ALPHABET.len() {
                        word[i] = ALPHABET[digits[i]];
                        break;
                    }
                    digits[i] = 0;
                    word[i] = ALPHABET[0];
                }
            }
        }
        tags.into_iter().map(|t| t.unwrap_or_default()).collect()
    });
    &tags[usize::from(slot % SLOTS)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_follow_the_hash_tag_rule() {
        // Values from Redis's own CLUSTER KEYSLOT.
        assert_eq!(slot("a"), 15495);
        assert_eq!(slot("b"), 3300);
        assert_eq!(slot("{x}1"), slot("x"));
        assert_eq!(slot("{user:1}:cart"), slot("user:1"));
        assert_eq!(slot("a{user:1}b"), slot("user:1"));
        // An empty tag does not count: the whole key is hashed.
        assert_eq!(hash_part(b"{}a"), b"{}a");
        assert_eq!(hash_part(b"a{b"), b"a{b");
        assert_eq!(hash_part(b"a}b{c"), b"a}b{c");
        // Only the first `{` opens a tag, closed by the first `}` after it.
        assert_eq!(hash_part(b"{a{b}c}"), b"a{b");
        assert_eq!(hash_part(b"x{}{y}"), b"x{}{y}");
        assert_eq!(hash_part(b"}{a}"), b"a");
    }

    #[test]
    fn every_slot_has_a_tag_that_hashes_to_it() {
        for s in 0..SLOTS {
            let tag = slot_tag(s);
            assert!(!tag.is_empty() && tag.len() <= 4, "slot {s}: {tag:?}");
            assert!(!tag.contains(['{', '}']));
            assert_eq!(slot(tag), s, "{tag}");
            let books = Layout::Cluster.books_of_slot(s);
            for name in [&books.slide, &books.idem, &books.idem_expiry] {
                assert_eq!(slot(name), s, "{name}");
            }
        }
        // The first tags are the shortest words: stable across releases.
        assert_eq!(slot_tag(slot("0")), "0");
        assert_eq!(slot_tag(slot("z")), "z");
    }

    #[test]
    fn bookkeeping_keys_share_their_key_slot() {
        for key in [
            "k",
            "{user:1}:cart",
            "a}b",
            "{}x",
            "a{b",
            "é{",
            "{{}}",
            "}{",
        ] {
            let books = Layout::Cluster.books(key);
            assert_eq!(slot(&books.slide), slot(key), "{key}");
            assert_eq!(slot(&books.idem_expiry), slot(key), "{key}");
        }
        let single = Layout::Single.books("{user:1}:cart");
        assert_eq!(single.slide, "__kv__:ttl");
        assert_eq!(single.idem, "__kv__:idem");
        assert_eq!(single.idem_expiry, "__kv__:idem:expiry");
    }
}
