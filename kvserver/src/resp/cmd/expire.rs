//! `EXPIRE`, `PEXPIRE`, `EXPIREAT`, `PEXPIREAT` (with `NX`, `XX`, `GT`, `LT`),
//! `TTL`, `PTTL`, `EXPIRETIME`, `PEXPIRETIME`, `PERSIST`.
//!
//! Times are read on the server's clock (the one expiry follows). A deadline
//! already past deletes the key, as in Redis; one more than ten years ahead (the
//! store's longest TTL) is `invalid expire time`. `TTL` rounds to the nearest
//! second, as Redis does; `PTTL` rounds up, so that a live key never shows 0. With
//! `--sliding` the TTL of a key is the one its last write or read restarted.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::args::{Error, int, is};
use super::{Ctx, Result};
use crate::resp::frame::Reply;

/// The condition of an `EXPIRE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum When {
    Always,
    /// Only a key without a TTL.
    Nx,
    /// Only a key with a TTL.
    Xx,
    /// Only a later deadline (a key without a TTL has the latest).
    Gt,
    /// Only an earlier deadline.
    Lt,
}

fn condition(args: &[Bytes]) -> std::result::Result<When, Error> {
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for arg in args {
        if is(arg, "NX") {
            nx = true;
        } else if is(arg, "XX") {
            xx = true;
        } else if is(arg, "GT") {
            gt = true;
        } else if is(arg, "LT") {
            lt = true;
        } else {
            return Err(Error(format!(
                "ERR Unsupported option {}",
                String::from_utf8_lossy(arg)
            )));
        }
    }
    if nx && (xx || gt || lt) {
        return Err(Error::new(
            "ERR NX and XX, GT or LT options at the same time are not compatible",
        ));
    }
    if gt && lt {
        return Err(Error::new(
            "ERR GT and LT options at the same time are not compatible",
        ));
    }
    Ok(match (nx, xx, gt, lt) {
        (true, ..) => When::Nx,
        (_, _, true, _) => When::Gt,
        (_, _, _, true) => When::Lt,
        (_, true, ..) => When::Xx,
        _ => When::Always,
    })
}

/// Milliseconds since the Unix epoch of `time` (negative before it).
pub fn unix_ms(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

/// A Redis deadline in Unix milliseconds as a TTL from `now`: `None` when it has
/// passed; an error when it is beyond the store's longest TTL.
pub fn ttl_until(
    deadline_ms: i64,
    now: SystemTime,
    command: &str,
) -> std::result::Result<Option<Duration>, Error> {
    let deadline = match u64::try_from(deadline_ms) {
        Ok(ms) => UNIX_EPOCH + Duration::from_millis(ms),
        Err(_) => return Ok(None),
    };
    match deadline.duration_since(now) {
        Ok(ttl) if ttl.is_zero() => Ok(None),
        Ok(ttl) if ttl > kvcore::MAX_TTL => Err(invalid_time(command)),
        Ok(ttl) => Ok(Some(ttl)),
        Err(_) => Ok(None),
    }
}

/// `ERR invalid expire time in 'set' command`.
pub fn invalid_time(command: &str) -> Error {
    Error(format!("ERR invalid expire time in '{command}' command"))
}

/// The shared body of the four: `unit_ms` is 1000 for seconds; `absolute` for the
/// `...AT` forms.
async fn expire_generic(
    ctx: &mut Ctx<'_>,
    args: &[Bytes],
    command: &str,
    unit_ms: i64,
    absolute: bool,
) -> Result {
    let when = condition(&args[3..])?;
    let amount = int(&args[2])?;
    let now = ctx.state.clock().now();
    let base = if absolute { 0 } else { unix_ms(now) };
    let deadline_ms = amount
        .checked_mul(unit_ms)
        .and_then(|ms| ms.checked_add(base))
        .ok_or_else(|| invalid_time(command))?;
    let Some(key) = ctx.existing_key(&args[1]) else {
        return Ok(Reply::Int(0));
    };
    let backend = ctx.state.backend();
    let Some(current) = backend.ttl(key).await? else {
        return Ok(Reply::Int(0));
    };
    let current_ms = current.map(|ttl| unix_ms(now + ttl));
    let applies = match (when, current_ms) {
        (When::Always, _) => true,
        (When::Nx, current) => current.is_none(),
        (When::Xx, current) => current.is_some(),
        (When::Gt, Some(current)) => deadline_ms > current,
        (When::Gt, None) => false,
        (When::Lt, Some(current)) => deadline_ms < current,
        (When::Lt, None) => true,
    };
    if !applies {
        return Ok(Reply::Int(0));
    }
    let done = match ttl_until(deadline_ms, now, command)? {
        Some(ttl) => backend.expire(key, ttl).await?,
        None => backend.delete(key).await?,
    };
    Ok(Reply::Int(i64::from(done)))
}

/// `EXPIRE key seconds [NX|XX|GT|LT]`.
pub async fn expire(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Result {
    expire_generic(ctx, args, "expire", 1000, false).await
}

/// `PEXPIRE key milliseconds [NX|XX|GT|LT]`.
pub async fn pexpire(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Result {
    expire_generic(ctx, args, "pexpire", 1, false).await
}

/// `EXPIREAT key unix-time-seconds [NX|XX|GT|LT]`.
pub async fn expireat(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Result {
    expire_generic(ctx, args, "expireat", 1000, true).await
}

/// `PEXPIREAT key unix-time-milliseconds [NX|XX|GT|LT]`.
pub async fn pexpireat(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Result {
    expire_generic(ctx, args, "pexpireat", 1, true).await
}

/// The TTL of the key `arg` names: `None` for no key, `Some(None)` for no TTL.
async fn ttl_of(ctx: &Ctx<'_>, arg: &[u8]) -> std::result::Result<Option<Option<Duration>>, Error> {
    match ctx.existing_key(arg) {
        Some(key) => Ok(ctx.state.backend().ttl(key).await?),
        None => Ok(None),
    }
}

/// `TTL key`: seconds left, rounded; -1 without a TTL, -2 without the key.
pub async fn ttl(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Result {
    Ok(Reply::Int(match ttl_of(ctx, &args[1]).await? {
        None => -2,
        Some(None) => -1,
        Some(Some(ttl)) => {
            i64::try_from((kvcore::ttl::millis(ttl) + 500) / 1000).unwrap_or(i64::MAX)
        }
    }))
}

/// `PTTL key`: milliseconds left, rounded up; -1 without a TTL, -2 without the key.
pub async fn pttl(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Result {
    Ok(Reply::Int(match ttl_of(ctx, &args[1]).await? {
        None => -2,
        Some(None) => -1,
        Some(Some(ttl)) => i64::try_from(kvcore::ttl::millis(ttl)).unwrap_or(i64::MAX),
    }))
}

async fn expiretime_generic(ctx: &mut Ctx<'_>, args: &[Bytes], unit_ms: i64) -> Result {
    Ok(Reply::Int(match ttl_of(ctx, &args[1]).await? {
        None => -2,
        Some(None) => -1,
        Some(Some(ttl)) => unix_ms(ctx.state.clock().now() + ttl) / unit_ms,
    }))
}

/// `EXPIRETIME key`: the Unix time in seconds the key expires at; -1, -2 as `TTL`.
pub async fn expiretime(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Result {
    expiretime_generic(ctx, args, 1000).await
}

/// `PEXPIRETIME key`: the Unix time in milliseconds the key expires at.
pub async fn pexpiretime(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Result {
    expiretime_generic(ctx, args, 1).await
}

/// `PERSIST key`: 1 when the key had a TTL and lost it, else 0.
pub async fn persist(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Result {
    let Some(key) = ctx.existing_key(&args[1]) else {
        return Ok(Reply::Int(0));
    };
    let backend = ctx.state.backend();
    if !matches!(backend.ttl(key).await?, Some(Some(_))) {
        return Ok(Reply::Int(0));
    }
    Ok(Reply::Int(i64::from(backend.clear_ttl(key).await?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(list: &[&str]) -> Vec<Bytes> {
        list.iter()
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect()
    }

    #[test]
    fn conditions_combine_as_in_redis() {
        assert_eq!(condition(&words(&[])).unwrap(), When::Always);
        assert_eq!(condition(&words(&["nx"])).unwrap(), When::Nx);
        assert_eq!(condition(&words(&["XX", "GT"])).unwrap(), When::Gt);
        assert_eq!(
            condition(&words(&["NX", "XX"])).unwrap_err().0,
            "ERR NX and XX, GT or LT options at the same time are not compatible"
        );
        assert_eq!(
            condition(&words(&["GT", "LT"])).unwrap_err().0,
            "ERR GT and LT options at the same time are not compatible"
        );
        assert_eq!(
            condition(&words(&["FOO"])).unwrap_err().0,
            "ERR Unsupported option FOO"
        );
    }

    #[test]
    fn deadlines_become_ttls() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        assert_eq!(
            ttl_until(1_000_500, now, "x").unwrap(),
            Some(Duration::from_millis(500))
        );
        assert_eq!(ttl_until(1_000_000, now, "x").unwrap(), None);
        assert_eq!(ttl_until(-5, now, "x").unwrap(), None);
        assert!(
            ttl_until(i64::MAX, now, "pexpireat")
                .unwrap_err()
                .0
                .contains("'pexpireat'")
        );
        assert_eq!(unix_ms(now), 1_000_000);
        assert_eq!(unix_ms(UNIX_EPOCH - Duration::from_millis(3)), -3);
    }
}
