//! `APPEND`, `GETRANGE` (and its old name `SUBSTR`), `SETRANGE`, `LCS`: values as
//! byte strings, offsets counted in bytes from 0, negative ones from the end.
//!
//! `APPEND` and `SETRANGE` are one atomic step of the store against every other
//! writer of the key; a key they create gets the default TTL, a key they change
//! keeps its own. A result longer than `--max-value-bytes` is refused, as Redis
//! refuses one longer than its `proto-max-bulk-len`.

use bytes::Bytes;
use kvcore::Compute;

use super::args::{Error, bulk, int, is, stored};
use super::{Ctx, Result};
use crate::resp::frame::Reply;

/// The value of a key for a read: empty for a missing key (which is how Redis
/// treats one in these commands), `None` only when the key is missing.
async fn read(ctx: &Ctx<'_>, arg: &[u8]) -> std::result::Result<Option<kvcore::Bytes>, Error> {
    let Some(key) = ctx.existing_key(arg) else {
        return Ok(None);
    };
    Ok(ctx.state.backend().get_with_ttl(key).await?.map(|(v, _)| v))
}

/// `APPEND key value`: the new length.
pub async fn append(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Result {
    let key = ctx.key(&args[1])?;
    let suffix = args[2].clone();
    let max = ctx.state.limits().max_value_bytes;
    let (_, outcome) = ctx
        .state
        .backend()
        .compute(key, move |old| {
            let old = old.map_or(&[][..], |v| &v[..]);
            if old.len() + suffix.len() > max {
                return (Compute::Keep, Err(Error::too_large()));
            }
            let mut joined = Vec::with_capacity(old.len() + suffix.len());
            joined.extend_from_slice(old);
            joined.extend_from_slice(&suffix);
            let len = joined.len();
            (Compute::Set(kvcore::Bytes::from(joined)), Ok(len))
        })
        .await?;
    Ok(Reply::Int(i64::try_from(outcome?).unwrap_or(i64::MAX)))
}

/// Redis's reading of a `start`..`end` range over `len` units: the inclusive
/// range, or `None` when it is empty.
pub fn range(start: i64, end: i64, len: i64) -> Option<(i64, i64)> {
    if start < 0 && end < 0 && start > end {
        return None;
    }
    clamped(start, end, len)
}

/// [`range`] without its first rule (two negative offsets the wrong way round are
/// empty), which `BITPOS` does not have: both are clamped to the value first.
pub fn clamped(start: i64, end: i64, len: i64) -> Option<(i64, i64)> {
    let mut start = if start < 0 { len + start } else { start };
    let mut end = if end < 0 { len + end } else { end };
    start = start.max(0);
    end = end.max(0);
    if end >= len {
        end = len - 1;
    }
    (start <= end && len > 0).then_some((start, end))
}

/// `GETRANGE key start end`, `SUBSTR key start end`.
pub async fn getrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Result {
    let start = int(&args[2])?;
    let end = int(&args[3])?;
    let value = read(ctx, &args[1]).await?.unwrap_or_else(|| stored(b""));
    let len = i64::try_from(value.len()).unwrap_or(i64::MAX);
    Ok(match range(start, end, len) {
        Some((start, end)) => {
            let (start, end) = (start.unsigned_abs() as usize, end.unsigned_abs() as usize);
            Reply::Bulk(Bytes::copy_from_slice(&value[start..=end]))
        }
        None => Reply::bulk_static(""),
    })
}

/// `SETRANGE key offset value`: the new length.
pub async fn setrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Result {
    let offset = int(&args[2])?;
    let offset = usize::try_from(offset).map_err(|_| Error::new("ERR offset is out of range"))?;
    let key = ctx.key(&args[1])?;
    let patch = args[3].clone();
    let max = ctx.state.limits().max_value_bytes;
    let (_, outcome) = ctx
        .state
        .backend()
        .compute(key, move |old| {
            let Some(old) = old else {
                if patch.is_empty() {
                    return (Compute::Keep, Ok(0));
                }
                if offset.saturating_add(patch.len()) > max {
                    return (Compute::Keep, Err(Error::too_large()));
                }
                let mut value = vec![0; offset + patch.len()];
                value[offset..].copy_from_slice(&patch);
                return (
                    Compute::Set(kvcore::Bytes::from(value)),
                    Ok(offset + patch.len()),
                );
            };
            if patch.is_empty() {
                return (Compute::Keep, Ok(old.len()));
            }
            if offset.saturating_add(patch.len()) > max {
                return (Compute::Keep, Err(Error::too_large()));
            }
            let mut value = old.to_vec();
            if value.len() < offset + patch.len() {
                value.resize(offset + patch.len(), 0);
            }
            value[offset..offset + patch.len()].copy_from_slice(&patch);
            let len = value.len();
            (Compute::Set(kvcore::Bytes::from(value)), Ok(len))
        })
        .await?;
    Ok(Reply::Int(i64::try_from(outcome?).unwrap_or(i64::MAX)))
}

/// `LCS key1 key2 [LEN] [IDX] [MINMATCHLEN n] [WITHMATCHLEN]`: the longest common
/// subsequence of two values, its length, or where it matches, as Redis computes
/// and orders them. A missing key is an empty value.
pub async fn lcs(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Result {
    let (mut getidx, mut getlen, mut withmatchlen, mut minmatchlen) = (false, false, false, 0u64);
    let mut at = 3;
    while at < args.len() {
        let more = args.len() - 1 - at;
        if is(&args[at], "IDX") {
            getidx = true;
        } else if is(&args[at], "LEN") {
            getlen = true;
        } else if is(&args[at], "WITHMATCHLEN") {
            withmatchlen = true;
        } else if is(&args[at], "MINMATCHLEN") && more > 0 {
            minmatchlen = u64::try_from(int(&args[at + 1])?).unwrap_or(0);
            at += 1;
        } else {
            return Err(Error::syntax());
        }
        at += 1;
    }
    let a = read(ctx, &args[1]).await?.unwrap_or_else(|| stored(b""));
    let b = read(ctx, &args[2]).await?.unwrap_or_else(|| stored(b""));
    if getidx && getlen {
        return Err(Error::new(
            "ERR If you want both the length and indexes, please just use IDX.",
        ));
    }
    let cells = (a.len() as u64 + 1).saturating_mul(b.len() as u64 + 1);
    let max = ctx.server.settings.limits.max_request_bytes as u64;
    if cells.saturating_mul(4) > max {
        return Err(Error::new(
            "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len",
        ));
    }
    Ok(lcs_reply(&a, &b, getidx, getlen, withmatchlen, minmatchlen))
}

/// The reply of `LCS` over `a` and `b`, built as Redis builds it.
fn lcs_reply(
    a: &[u8],
    b: &[u8],
    getidx: bool,
    getlen: bool,
    withmatchlen: bool,
    minmatchlen: u64,
) -> Reply {
    let (alen, blen) = (a.len(), b.len());
    let width = blen + 1;
    // table[i * width + j]: the LCS length of a[..i] and b[..j].
    let mut table = vec![0u32; (alen + 1) * width];
    for i in 1..=alen {
        for j in 1..=blen {
            table[i * width + j] = if a[i - 1] == b[j - 1] {
                table[(i - 1) * width + j - 1] + 1
            } else {
                table[(i - 1) * width + j].max(table[i * width + j - 1])
            };
        }
    }
    let total = table[alen * width + blen];
    if getlen && !getidx {
        return Reply::Int(total.into());
    }
    // Walk back from the end, as Redis does, collecting the LCS (backwards) and
    // the ranges where both values match.
    let mut result = vec![0u8; total as usize];
    let mut idx = total as usize;
    let mut matches = Vec::new();
    let (mut i, mut j) = (alen, blen);
    // The range being tracked: (a_start, a_end, b_start, b_end); None between ranges.
    let mut current: Option<(usize, usize, usize, usize)> = None;
    while i > 0 && j > 0 {
        let mut emit = false;
        if a[i - 1] == b[j - 1] {
            result[idx - 1] = a[i - 1];
            current = Some(match current {
                None => (i - 1, i - 1, j - 1, j - 1),
                Some((a_start, a_end, b_start, b_end)) if a_start == i && b_start == j => {
                    (a_start - 1, a_end, b_start - 1, b_end)
                }
                Some(range) => {
                    emit = true;
                    range
                }
            });
            if let Some((a_start, _, b_start, _)) = current
                && (a_start == 0 || b_start == 0)
            {
                emit = true;
            }
            idx -= 1;
            i -= 1;
            j -= 1;
        } else {
            if table[(i - 1) * width + j] > table[i * width + j - 1] {
                i -= 1;
            } else {
                j -= 1;
            }
            if current.is_some() {
                emit = true;
            }
        }
        if emit && let Some((a_start, a_end, b_start, b_end)) = current.take() {
            let len = (a_end - a_start + 1) as u64;
            if minmatchlen == 0 || len >= minmatchlen {
                let int = |n: usize| Reply::Int(i64::try_from(n).unwrap_or(i64::MAX));
                let mut entry = vec![
                    Reply::Array(vec![int(a_start), int(a_end)]),
                    Reply::Array(vec![int(b_start), int(b_end)]),
                ];
                if withmatchlen {
                    entry.push(Reply::Int(i64::try_from(len).unwrap_or(i64::MAX)));
                }
                matches.push(Reply::Array(entry));
            }
        }
    }
    if getidx {
        return Reply::Map(vec![
            (Reply::bulk_static("matches"), Reply::Array(matches)),
            (Reply::bulk_static("len"), Reply::Int(total.into())),
        ]);
    }
    bulk(kvcore::Bytes::from(result))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_as_redis_reads_them() {
        assert_eq!(range(0, -1, 5), Some((0, 4)));
        assert_eq!(range(-3, -1, 5), Some((2, 4)));
        assert_eq!(range(-1, -3, 5), None);
        assert_eq!(range(3, 100, 5), Some((3, 4)));
        assert_eq!(range(-100, 1, 5), Some((0, 1)));
        assert_eq!(range(4, 2, 5), None);
        assert_eq!(range(0, 0, 0), None);
    }

    #[test]
    fn lcs_finds_what_redis_finds() {
        let a = b"ohmytext";
        let b = b"mynewtext";
        assert_eq!(
            lcs_reply(a, b, false, false, false, 0),
            Reply::Value(kvcore::Bytes::from("mytext"))
        );
        assert_eq!(lcs_reply(a, b, false, true, false, 0), Reply::Int(6));
        let Reply::Map(fields) = lcs_reply(a, b, true, false, true, 0) else {
            panic!("a map")
        };
        let int = Reply::Int;
        assert_eq!(
            fields[0].1,
            Reply::Array(vec![
                Reply::Array(vec![
                    Reply::Array(vec![int(4), int(7)]),
                    Reply::Array(vec![int(5), int(8)]),
                    int(4)
                ]),
                Reply::Array(vec![
                    Reply::Array(vec![int(2), int(3)]),
                    Reply::Array(vec![int(0), int(1)]),
                    int(2)
                ]),
            ])
        );
        assert_eq!(fields[1].1, int(6));
    }
}
