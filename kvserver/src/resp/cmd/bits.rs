//! `SETBIT`, `GETBIT`, `BITCOUNT`, `BITPOS`: a value as a string of bits, bit 0
//! being the most significant bit of the first byte, as in Redis.
//!
//! `SETBIT` is one atomic step of the store against every other writer of the
//! key; it pads the value with zero bytes as far as the bit, and refuses an offset
//! whose byte would pass `--max-value-bytes`.

use bytes::Bytes;
use kvcore::Compute;

use super::args::{Error, int, is};
use super::text::{clamped, range};
use super::{Ctx, Result};
use crate::resp::frame::Reply;

/// A bit offset: a non-negative integer whose byte is within `max_bytes`.
fn bit_offset(arg: &[u8], max_bytes: usize) -> std::result::Result<usize, Error> {
    let bad = || Error::new("ERR bit offset is not an integer or out of range");
    let offset = crate::resp::number::parse_i64(arg).ok_or_else(bad)?;
    let offset = usize::try_from(offset).map_err(|_| bad())?;
    if offset >> 3 >= max_bytes {
        return Err(bad());
    }
    Ok(offset)
}

async fn read(ctx: &Ctx<'_>, arg: &[u8]) -> std::result::Result<Option<kvcore::Bytes>, Error> {
    let Some(key) = ctx.existing_key(arg) else {
        return Ok(None);
    };
    Ok(ctx.state.backend().get_with_ttl(key).await?.map(|(v, _)| v))
}

fn bit_at(value: &[u8], offset: usize) -> u8 {
    value
        .get(offset >> 3)
        .map_or(0, |byte| (byte >> (7 - (offset & 7))) & 1)
}

/// `SETBIT key offset value`: the bit it was.
pub async fn setbit(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Result {
    let max = ctx.state.limits().max_value_bytes;
    let offset = bit_offset(&args[2], max)?;
    let on = match crate::resp::number::parse_i64(&args[3]) {
        Some(0) => false,
        Some(1) => true,
        _ => return Err(Error::new("ERR bit is not an integer or out of range")),
    };
    let key = ctx.key(&args[1])?;
    let (_, was) = ctx
        .state
        .backend()
        .compute(key, move |old| {
            let mut value = old.map_or_else(Vec::new, |v| v.to_vec());
            let byte = offset >> 3;
            if value.len() <= byte {
                value.resize(byte + 1, 0);
            }
            let mask = 1u8 << (7 - (offset & 7));
            let was = value[byte] & mask != 0;
            if on {
                value[byte] |= mask;
            } else {
                value[byte] &= !mask;
            }
            (Compute::Set(kvcore::Bytes::from(value)), was)
        })
        .await?;
    Ok(Reply::Int(i64::from(was)))
}

/// `GETBIT key offset`: 0 beyond the value or without the key.
pub async fn getbit(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Result {
    let offset = bit_offset(&args[2], ctx.state.limits().max_value_bytes)?;
    let value = read(ctx, &args[1]).await?;
    Ok(Reply::Int(value.map_or(0, |v| bit_at(&v, offset).into())))
}

/// `BYTE` (false) or `BIT` (true), else a syntax error.
fn unit(arg: &[u8]) -> std::result::Result<bool, Error> {
    if is(arg, "BIT") {
        Ok(true)
    } else if is(arg, "BYTE") {
        Ok(false)
    } else {
        Err(Error::syntax())
    }
}

/// The inclusive range of bit offsets `start`..`end` names, in bytes or bits.
/// `strict`: two negative offsets the wrong way round are empty (`BITCOUNT`), else
/// they are clamped first (`BITPOS`).
fn bit_range(start: i64, end: i64, len: usize, bits: bool, strict: bool) -> Option<(usize, usize)> {
    let units = i64::try_from(len).unwrap_or(i64::MAX);
    let units = if bits { units.saturating_mul(8) } else { units };
    let (start, end) = if strict {
        range(start, end, units)?
    } else {
        clamped(start, end, units)?
    };
    let (start, end) = (start.unsigned_abs() as usize, end.unsigned_abs() as usize);
    Some(if bits {
        (start, end)
    } else {
        (start * 8, end * 8 + 7)
    })
}

/// `BITCOUNT key [start end [BYTE|BIT]]`: the set bits, in all or in a range; 0
/// without the key, whatever the range (Redis looks the key up first).
pub async fn bitcount(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Result {
    let Some(value) = read(ctx, &args[1]).await? else {
        return Ok(Reply::Int(0));
    };
    let span = match args.len() {
        2 => None,
        4 | 5 => {
            let start = int(&args[2])?;
            let end = int(&args[3])?;
            let bits = match args.get(4) {
                Some(arg) => unit(arg)?,
                None => false,
            };
            Some((start, end, bits))
        }
        _ => return Err(Error::syntax()),
    };
    let (first, last) = match span {
        None if value.is_empty() => return Ok(Reply::Int(0)),
        None => (0, value.len() * 8 - 1),
        Some((start, end, bits)) => match bit_range(start, end, value.len(), bits, true) {
            Some(bits) => bits,
            None => return Ok(Reply::Int(0)),
        },
    };
    let count = count_ones(&value, first, last);
    Ok(Reply::Int(i64::try_from(count).unwrap_or(i64::MAX)))
}

/// `BITPOS key bit [start [end [BYTE|BIT]]]`: the first bit set to `bit`, or -1.
///
/// A missing key is all clear bits. Looking for a clear bit without an `end`, the
/// value counts as followed by clear bits, so the answer may be the first bit past
/// its end; with an `end`, only the range counts.
pub async fn bitpos(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Result {
    let bit = match crate::resp::number::parse_i64(&args[2]) {
        Some(bit @ (0 | 1)) => bit as u8,
        Some(_) => return Err(Error::new("ERR The bit argument must be 1 or 0.")),
        None => return Err(Error::not_integer()),
    };
    let Some(value) = read(ctx, &args[1]).await? else {
        return Ok(Reply::Int(if bit == 1 { -1 } else { 0 }));
    };
    let (span, end_given) = match args.len() {
        3 => ((!value.is_empty()).then(|| (0, value.len() * 8 - 1)), false),
        4..=6 => {
            let start = int(&args[3])?;
            let bits = match args.get(5) {
                Some(arg) => unit(arg)?,
                None => false,
            };
            let (end, given) = match args.get(4) {
                Some(arg) => (int(arg)?, true),
                None => (-1, false),
            };
            (bit_range(start, end, value.len(), bits, false), given)
        }
        _ => return Err(Error::syntax()),
    };
    let Some((first, last)) = span else {
        return Ok(Reply::Int(-1));
    };
    let found = find_bit(&value, first, last, bit);
    let position = match found {
        Some(at) => i64::try_from(at).unwrap_or(i64::MAX),
        None if bit == 0 && !end_given => i64::try_from(last + 1).unwrap_or(i64::MAX),
        None => -1,
    };
    Ok(Reply::Int(position))
}

/// The set bits among bits `first..=last`: whole bytes by `count_ones`, the edges
/// bit by bit.
fn count_ones(value: &[u8], first: usize, last: usize) -> usize {
    let (first_byte, last_byte) = (first.div_ceil(8), (last + 1) / 8);
    if first_byte >= last_byte {
        return (first..=last)
            .filter(|&bit| bit_at(value, bit) == 1)
            .count();
    }
    let head = (first..first_byte * 8)
        .filter(|&bit| bit_at(value, bit) == 1)
        .count();
    let tail = (last_byte * 8..=last)
        .filter(|&bit| bit_at(value, bit) == 1)
        .count();
    let middle: u32 = value[first_byte..last_byte]
        .iter()
        .map(|b| b.count_ones())
        .sum();
    head + middle as usize + tail
}

/// The first of bits `first..=last` that is `bit`: bytes that cannot hold it are
/// skipped whole.
fn find_bit(value: &[u8], first: usize, last: usize, bit: u8) -> Option<usize> {
    let skip = if bit == 1 { 0x00 } else { 0xff };
    let mut at = first;
    while at <= last {
        if at.is_multiple_of(8) && at + 7 <= last && value.get(at / 8).is_some_and(|&b| b == skip) {
            at += 8;
            continue;
        }
        if bit_at(value, at) == bit {
            return Some(at);
        }
        at += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_count_from_the_top_of_the_first_byte() {
        let v = [0b1000_0001, 0b0100_0000];
        assert_eq!(bit_at(&v, 0), 1);
        assert_eq!(bit_at(&v, 7), 1);
        assert_eq!(bit_at(&v, 9), 1);
        assert_eq!(bit_at(&v, 10), 0);
        assert_eq!(bit_at(&v, 100), 0);
    }

    #[test]
    fn whole_bytes_count_as_their_bits_do() {
        let value: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(37)).collect();
        let bits = value.len() * 8;
        for first in [0, 1, 7, 8, 9, 100] {
            for last in [first, first + 6, first + 8, first + 63, bits - 1] {
                let naive = (first..=last).filter(|&b| bit_at(&value, b) == 1).count();
                assert_eq!(count_ones(&value, first, last), naive, "{first}..={last}");
                for bit in [0, 1] {
                    let naive = (first..=last).find(|&b| bit_at(&value, b) == bit);
                    assert_eq!(
                        find_bit(&value, first, last, bit),
                        naive,
                        "{first}..={last} {bit}"
                    );
                }
            }
        }
        let zeros = [0u8; 10];
        assert_eq!(find_bit(&zeros, 0, 79, 1), None);
        assert_eq!(find_bit(&zeros, 3, 79, 0), Some(3));
    }

    #[test]
    fn byte_ranges_cover_their_bits() {
        assert_eq!(bit_range(0, -1, 2, false, true), Some((0, 15)));
        assert_eq!(bit_range(1, 1, 2, false, true), Some((8, 15)));
        assert_eq!(bit_range(3, 9, 2, true, true), Some((3, 9)));
        assert_eq!(bit_range(-1, -2, 2, true, true), None);
        assert_eq!(bit_range(-12, -14, 3, false, false), Some((0, 7)));
        assert_eq!(
            bit_offset(b"-1", 10).unwrap_err().0,
            "ERR bit offset is not an integer or out of range"
        );
        assert!(bit_offset(b"80", 10).is_err());
        assert_eq!(bit_offset(b"79", 10).unwrap(), 79);
    }
}
