//! The on-disk format shared by snapshots and journals.
//!
//! A file is a 24-byte header followed by records:
//!
//! ```text
//! header: magic [8] | version u32 | generation u64 | crc32 u32   (of the 20 bytes before)
//! record: length u32 | crc32 u32 (of length) | crc32 u32 (of payload) | payload [length]
//! payload: 1 PUT   | key length u32 | key | deadline u64 | ttl u64 | value bytes
//!          2 DEL   | key
//!          3 CLEAR
//!          4 END   | record count u64                    (snapshots only, last record)
//! ```
//!
//! The length has a checksum of its own, so a damaged length is recognised as damage
//! and never mistaken for a record cut short by a crash.
//!
//! Integers are little-endian. Deadlines are nanoseconds since the Unix epoch (0: none)
//! so that time spent down counts; `ttl` is the length a sliding read restarts at.

use std::fmt;

/// Magic of a journal file.
pub(crate) const JOURNAL_MAGIC: [u8; 8] = *b"kvjournl";
/// Magic of a snapshot file.
pub(crate) const SNAPSHOT_MAGIC: [u8; 8] = *b"kvsnapsh";
/// The format version this build writes.
///
/// Version 3 has the same layout as version 2; it marks a file written by a release
/// that keeps a `MANIFEST` beside its files, so that a directory holding version-3
/// files and no `MANIFEST` is known to have lost it (see the `manifest` module).
pub(crate) const VERSION: u32 = 3;
/// The oldest format version this build reads.
pub(crate) const OLDEST_VERSION: u32 = 2;
/// Header length in bytes.
pub(crate) const HEADER_LEN: usize = 24;
/// Frame overhead (length and two checksums) before each payload.
const FRAME_LEN: usize = 12;
/// Longest payload accepted; anything longer is corruption.
const MAX_PAYLOAD: usize = 1 << 30;

const PUT: u8 = 1;
const DEL: u8 = 2;
const CLEAR: u8 = 3;
const END: u8 = 4;

/// A decoded record, borrowing from the file's bytes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Record<'a> {
    Put {
        key: &'a str,
        deadline: u64,
        ttl: u64,
        value: &'a [u8],
    },
    Del {
        key: &'a str,
    },
    Clear,
    End {
        count: u64,
    },
}

pub(crate) fn header(magic: [u8; 8], generation: u64) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(&magic);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    h[12..20].copy_from_slice(&generation.to_le_bytes());
    let crc = crc32fast::hash(&h[..20]);
    h[20..].copy_from_slice(&crc.to_le_bytes());
    h
}

/// What is wrong with a header.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum HeaderError {
    /// Fewer bytes than a header.
    Short,
    /// Not a file of this kind, or damaged.
    Bad(String),
}

/// Checks a header and returns the generation it carries.
pub(crate) fn parse_header(bytes: &[u8], magic: [u8; 8]) -> Result<u64, HeaderError> {
    let h = bytes.get(..HEADER_LEN).ok_or(HeaderError::Short)?;
    if h[..8] != magic {
        return Err(HeaderError::Bad(
            "not a kv file of this kind (wrong magic number)".into(),
        ));
    }
    let crc = u32::from_le_bytes(h[20..24].try_into().unwrap_or_default());
    if crc != crc32fast::hash(&h[..20]) {
        return Err(HeaderError::Bad("header checksum mismatch".into()));
    }
    let version = version(h);
    if !(OLDEST_VERSION..=VERSION).contains(&version) {
        return Err(HeaderError::Bad(format!(
            "format version {version}, but this build reads versions {OLDEST_VERSION} to {VERSION}"
        )));
    }
    Ok(u64::from_le_bytes(h[12..20].try_into().unwrap_or_default()))
}

/// The format version a header (at least [`HEADER_LEN`] bytes, checked by
/// [`parse_header`]) carries.
pub(crate) fn version(header: &[u8]) -> u32 {
    header
        .get(8..12)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u32::from_le_bytes)
}

/// Appends one framed record whose payload `payload` writes.
pub(crate) fn frame(out: &mut Vec<u8>, payload: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_LEN]);
    payload(out);
    let len = u32::try_from(out.len() - start - FRAME_LEN).unwrap_or(u32::MAX);
    let len_bytes = len.to_le_bytes();
    let body_crc = crc32fast::hash(&out[start + FRAME_LEN..]);
    out[start..start + 4].copy_from_slice(&len_bytes);
    out[start + 4..start + 8].copy_from_slice(&crc32fast::hash(&len_bytes).to_le_bytes());
    out[start + 8..start + 12].copy_from_slice(&body_crc.to_le_bytes());
}

/// Appends a PUT record; `value` writes the encoded value.
pub(crate) fn put(
    out: &mut Vec<u8>,
    key: &str,
    deadline: u64,
    ttl: u64,
    value: impl FnOnce(&mut Vec<u8>),
) {
    frame(out, |p| {
        p.push(PUT);
        p.extend_from_slice(&u32::try_from(key.len()).unwrap_or(u32::MAX).to_le_bytes());
        p.extend_from_slice(key.as_bytes());
        p.extend_from_slice(&deadline.to_le_bytes());
        p.extend_from_slice(&ttl.to_le_bytes());
        value(p);
    });
}

/// Appends a DEL record.
pub(crate) fn del(out: &mut Vec<u8>, key: &str) {
    frame(out, |p| {
        p.push(DEL);
        p.extend_from_slice(key.as_bytes());
    });
}

/// Appends a CLEAR record.
pub(crate) fn clear(out: &mut Vec<u8>) {
    frame(out, |p| p.push(CLEAR));
}

/// Appends an END record.
pub(crate) fn end(out: &mut Vec<u8>, count: u64) {
    frame(out, |p| {
        p.push(END);
        p.extend_from_slice(&count.to_le_bytes());
    });
}

/// Why reading stopped before the end of the bytes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Damage {
    /// The last record is incomplete or fails its checksum and reaches the end of the
    /// file: a write cut short. Everything before `offset` is good.
    TornTail { offset: u64 },
    /// A bad record with more data after it.
    Corrupt { offset: u64, reason: String },
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Damage::TornTail { offset } => write!(f, "incomplete record at byte offset {offset}"),
            Damage::Corrupt { offset, reason } => write!(f, "byte offset {offset}: {reason}"),
        }
    }
}

/// Reads records from `bytes` (a whole file), starting after the header.
pub(crate) struct Records<'a> {
    bytes: &'a [u8],
    pos: usize,
    done: bool,
}

impl<'a> Records<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Records {
            bytes,
            pos: HEADER_LEN.min(bytes.len()),
            done: false,
        }
    }

    /// The offset of the next unread byte.
    pub fn offset(&self) -> u64 {
        self.pos as u64
    }

    fn damage(&mut self, at: usize, reason: String, reaches_end: bool) -> Damage {
        self.done = true;
        if reaches_end {
            Damage::TornTail { offset: at as u64 }
        } else {
            Damage::Corrupt {
                offset: at as u64,
                reason,
            }
        }
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<(u64, Record<'a>), Damage>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.pos >= self.bytes.len() {
            return None;
        }
        let at = self.pos;
        let rest = &self.bytes[at..];
        // Zeros to the end of the file are what a crash during preallocation leaves.
        if rest.iter().all(|&b| b == 0) {
            return Some(Err(self.damage(at, String::new(), true)));
        }
        let Some(frame) = rest.get(..FRAME_LEN) else {
            return Some(Err(self.damage(at, String::new(), true)));
        };
        let word =
            |i: usize| u32::from_le_bytes([frame[i], frame[i + 1], frame[i + 2], frame[i + 3]]);
        let (len, len_crc, body_crc) = (word(0), word(4), word(8));
        let len = len as usize;
        if crc32fast::hash(&frame[..4]) != len_crc {
            // Untrusted, but a length that ends exactly at the end of the file marks
            // the last record, whose write a crash may have cut short.
            let reaches_end = at.checked_add(FRAME_LEN + len) == Some(self.bytes.len());
            let reason = "record length checksum mismatch".to_string();
            return Some(Err(self.damage(at, reason, reaches_end)));
        }
        if len > MAX_PAYLOAD {
            let reason = format!("record length {len} is impossible");
            return Some(Err(self.damage(at, reason, false)));
        }
        let Some(payload) = rest.get(FRAME_LEN..FRAME_LEN + len) else {
            // A trusted length running past the end: the write was cut short.
            return Some(Err(self.damage(at, String::new(), true)));
        };
        if crc32fast::hash(payload) != body_crc {
            let reaches_end = at + FRAME_LEN + len == self.bytes.len();
            return Some(Err(self.damage(
                at,
                "checksum mismatch".into(),
                reaches_end,
            )));
        }
        match decode(payload) {
            Some(record) => {
                self.pos = at + FRAME_LEN + len;
                Some(Ok((at as u64, record)))
            }
            None => Some(Err(self.damage(at, "malformed record".into(), false))),
        }
    }
}

fn decode(payload: &[u8]) -> Option<Record<'_>> {
    let (&op, body) = payload.split_first()?;
    match op {
        PUT => {
            let klen = u32::from_le_bytes(body.get(..4)?.try_into().ok()?) as usize;
            let key = std::str::from_utf8(body.get(4..4 + klen)?).ok()?;
            let rest = body.get(4 + klen..)?;
            let deadline = u64::from_le_bytes(rest.get(..8)?.try_into().ok()?);
            let ttl = u64::from_le_bytes(rest.get(8..16)?.try_into().ok()?);
            Some(Record::Put {
                key,
                deadline,
                ttl,
                value: &rest[16..],
            })
        }
        DEL => Some(Record::Del {
            key: std::str::from_utf8(body).ok()?,
        }),
        CLEAR if body.is_empty() => Some(Record::Clear),
        END => Some(Record::End {
            count: u64::from_le_bytes(body.try_into().ok()?),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut f = header(JOURNAL_MAGIC, 7).to_vec();
        put(&mut f, "k", 5, 6, |p| p.extend_from_slice(b"value"));
        del(&mut f, "gone");
        clear(&mut f);
        put(&mut f, "ключ", 0, 0, |_| {});
        f
    }

    #[test]
    fn round_trip() {
        let f = sample();
        assert_eq!(parse_header(&f, JOURNAL_MAGIC), Ok(7));
        let recs: Vec<_> = Records::new(&f).map(|r| r.unwrap().1).collect();
        assert_eq!(
            recs,
            [
                Record::Put {
                    key: "k",
                    deadline: 5,
                    ttl: 6,
                    value: b"value"
                },
                Record::Del { key: "gone" },
                Record::Clear,
                Record::Put {
                    key: "ключ",
                    deadline: 0,
                    ttl: 0,
                    value: b""
                },
            ]
        );
    }

    #[test]
    fn every_truncation_is_a_torn_tail_at_the_last_good_record() {
        let f = sample();
        let ends: Vec<usize> = {
            let mut r = Records::new(&f);
            let mut v = vec![HEADER_LEN];
            while r.next().is_some() {
                v.push(r.offset() as usize);
            }
            v
        };
        for cut in HEADER_LEN..f.len() {
            let bytes = &f[..cut];
            let mut good = 0;
            let mut torn = None;
            for r in Records::new(bytes) {
                match r {
                    Ok(_) => good += 1,
                    Err(Damage::TornTail { offset }) => torn = Some(offset as usize),
                    Err(d) => panic!("cut at {cut}: {d}"),
                }
            }
            let last_good = *ends.iter().filter(|&&e| e <= cut).max().unwrap();
            assert_eq!(good, ends.iter().filter(|&&e| e <= cut).count() - 1);
            if cut != last_good {
                assert_eq!(torn, Some(last_good), "cut at {cut}");
            }
        }
    }

    #[test]
    fn a_flipped_byte_before_the_tail_is_corruption_with_its_offset() {
        let f = sample();
        let second = {
            let mut r = Records::new(&f);
            r.next();
            r.offset()
        };
        for i in HEADER_LEN..second as usize {
            let mut bad = f.clone();
            bad[i] ^= 0x40;
            let err = Records::new(&bad)
                .find_map(|r| r.err())
                .expect("damage found");
            match err {
                Damage::Corrupt { offset, .. } => assert_eq!(offset, HEADER_LEN as u64),
                Damage::TornTail { .. } => panic!("flip at {i} taken for a torn tail"),
            }
        }
    }

    #[test]
    fn a_zero_filled_tail_is_torn() {
        let mut f = sample();
        let end = f.len() as u64;
        f.extend_from_slice(&[0; 100]);
        let damage = Records::new(&f).find_map(|r| r.err());
        assert_eq!(damage, Some(Damage::TornTail { offset: end }));
    }

    #[test]
    fn headers_are_checked() {
        let h = header(SNAPSHOT_MAGIC, 3);
        assert_eq!(
            parse_header(&h[..10], SNAPSHOT_MAGIC),
            Err(HeaderError::Short)
        );
        assert!(matches!(
            parse_header(&h, JOURNAL_MAGIC),
            Err(HeaderError::Bad(_))
        ));
        let mut bad = h;
        bad[13] ^= 1;
        assert!(matches!(
            parse_header(&bad, SNAPSHOT_MAGIC),
            Err(HeaderError::Bad(_))
        ));
    }

    #[test]
    fn versions_from_the_oldest_read_are_accepted() {
        let with_version = |v: u32| {
            let mut h = header(JOURNAL_MAGIC, 4);
            h[8..12].copy_from_slice(&v.to_le_bytes());
            let crc = crc32fast::hash(&h[..20]);
            h[20..].copy_from_slice(&crc.to_le_bytes());
            h
        };
        for v in OLDEST_VERSION..=VERSION {
            assert_eq!(parse_header(&with_version(v), JOURNAL_MAGIC), Ok(4));
            assert_eq!(version(&with_version(v)), v);
        }
        for v in [OLDEST_VERSION - 1, VERSION + 1] {
            match parse_header(&with_version(v), JOURNAL_MAGIC) {
                Err(HeaderError::Bad(reason)) => {
                    assert!(reason.contains(&format!("format version {v}")), "{reason}");
                }
                other => panic!("version {v}: {other:?}"),
            }
        }
    }
}
