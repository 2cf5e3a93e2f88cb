//! `GET`, `SET`, `SETNX`, `SETEX`, `PSETEX`, `GETEX`, `GETDEL`, `GETSET`, `MGET`,
//! `MSET`, `MSETNX`, `STRLEN`.
//!
//! A value is the bytes sent, stored and returned exactly. A write without a TTL
//! gets the server's default TTL (`--ttl`), as an HTTP write does; `KEEPTTL` on a
//! new key does too. Commands that return the old value while writing (`SET ...
//! GET`, `GETSET`, `GETDEL`, `GETEX` with an option) are one atomic step of the
//! store against every other writer of the key, HTTP ones included.

use std::time::Duration;

use bytes::Bytes;
use kvcore::{Compute, Expiry, SetOptions, SetOutcome};

use super::args::{Error, bulk, int, is, stored};
use super::expire::{invalid_time, ttl_until, unix_ms};
use super::{Ctx, Result};
use crate::resp::frame::Reply;

/// What a write does to the key's TTL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ttl {
    /// The server's default (no option given).
    Default,
    /// Keep the key's TTL (`KEEPTTL`).
    Keep,
    /// None (`GETEX ... PERSIST`).
    Never,
    /// This long from now.
    After(Duration),
    /// A deadline already past (`EXAT`, `PXAT`): the key is gone once written.
    Gone,
}

impl Ttl {
    fn expiry(self) -> Expiry {
        match self {
            Ttl::Default => Expiry::Default,
            Ttl::Keep => Expiry::Keep,
            Ttl::Never => Expiry::Never,
            Ttl::After(ttl) => Expiry::After(ttl),
            Ttl::Gone => Expiry::Default,
        }
    }

    fn options(self) -> SetOptions {
        match self {
            Ttl::Default | Ttl::Gone => SetOptions::new(),
            Ttl::Keep => SetOptions::new().keep_ttl(),
            Ttl::Never => SetOptions::new().no_ttl(),
            Ttl::After(ttl) => SetOptions::new().ttl(ttl),
        }
    }
}

/// Which of `EX`, `PX`, `EXAT`, `PXAT` was given, with its number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Given {
    Ex(i64),
    Px(i64),
    ExAt(i64),
    PxAt(i64),
}

/// The options of `SET` (`for_set`) or `GETEX`, parsed as Redis parses them.
#[derive(Debug, Default)]
struct Options {
    nx: bool,
    xx: bool,
    get: bool,
    keepttl: bool,
    persist: bool,
    given: Option<Given>,
}

impl Options {
    fn parse(args: &[Bytes], for_set: bool) -> std::result::Result<Options, Error> {
        let mut o = Options::default();
        let mut at = 0;
        while at < args.len() {
            let opt = &args[at];
            let next = args.get(at + 1);
            let timed = o.given.is_some();
            if for_set && is(opt, "NX") && !o.xx {
                o.nx = true;
            } else if for_set && is(opt, "XX") && !o.nx {
                o.xx = true;
            } else if for_set && is(opt, "GET") {
                o.get = true;
            } else if for_set && is(opt, "KEEPTTL") && !timed {
                o.keepttl = true;
            } else if !for_set && is(opt, "PERSIST") && !timed {
                o.persist = true;
            } else if let (Some(next), false, false) = (next, o.keepttl, o.persist) {
                let number = || int(next);
                let same = |kind: fn(i64) -> Given| {
                    o.given.is_none_or(|g| {
                        std::mem::discriminant(&g) == std::mem::discriminant(&kind(0))
                    })
                };
                o.given = Some(if is(opt, "EX") && same(Given::Ex) {
                    Given::Ex(number()?)
                } else if is(opt, "PX") && same(Given::Px) {
                    Given::Px(number()?)
                } else if is(opt, "EXAT") && same(Given::ExAt) {
                    Given::ExAt(number()?)
                } else if is(opt, "PXAT") && same(Given::PxAt) {
                    Given::PxAt(number()?)
                } else {
                    return Err(Error::syntax());
                });
                at += 1;
            } else {
                return Err(Error::syntax());
            }
            at += 1;
        }
        Ok(o)
    }

    /// What the write does to the TTL, read on the server's clock.
    fn ttl(&self, ctx: &Ctx<'_>, command: &str) -> std::result::Result<Ttl, Error> {
        if self.keepttl {
            return Ok(Ttl::Keep);
        }
        if self.persist {
            return Ok(Ttl::Never);
        }
        match self.given {
            None => Ok(Ttl::Default),
            Some(given) => deadline(ctx, given, command),
        }
    }
}

/// The TTL an `EX`/`PX`/`EXAT`/`PXAT` number gives: non-positive numbers and
/// overflows are `invalid expire time`, as are TTLs beyond the store's ten years.
fn deadline(ctx: &Ctx<'_>, given: Given, command: &str) -> std::result::Result<Ttl, Error> {
    let (n, unit, absolute) = match given {
        Given::Ex(n) => (n, 1000, false),
        Given::Px(n) => (n, 1, false),
        Given::ExAt(n) => (n, 1000, true),
        Given::PxAt(n) => (n, 1, true),
    };
    let ms = n
        .checked_mul(unit)
        .filter(|_| n > 0)
        .ok_or_else(|| invalid_time(command))?;
    let now = ctx.state.clock().now();
    if !absolute {
        // Redis refuses a deadline past the end of its clock; the store, one
        // beyond its longest TTL.
        ms.checked_add(unix_ms(now))
            .ok_or_else(|| invalid_time(command))?;
        let ttl = Duration::from_millis(ms.unsigned_abs());
        if ttl > kvcore::MAX_TTL {
            return Err(invalid_time(command));
        }
        return Ok(Ttl::After(ttl));
    }
    Ok(match ttl_until(ms, now, command)? {
        Some(ttl) => Ttl::After(ttl),
        None => Ttl::Gone,
    })
}

/// `GET key`.
pub async fn get(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Result {
    let Some(key) = ctx.existing_key(&args[1]) else {
        return Ok(Reply::Null);
    };
    Ok(match ctx.state.backend().get_with_ttl(key).await? {
        Some((value, _)) => bulk(value),
        None => Reply::Null,
    })
}

/// Writes `value` under `key` unless `condition` fails; `None` when it failed.
async fn write(
    ctx: &Ctx<'_>,
    key: &str,
    value: Bytes,
    ttl: Ttl,
    nx: bool,
    xx: bool,
) -> std::result::Result<bool, Error> {
    let backend = ctx.state.backend();
    if ttl == Ttl::Gone {
        // Written and gone at once: only the condition's answer remains.
        let exists = backend.contains(key).await?;
        if (nx && exists) || (xx && !exists) {
            return Ok(false);
        }
        backend.delete(key).await?;
        return Ok(true);
    }
    let mut opts = ttl.options();
    if nx {
        opts = opts.if_absent();
    } else if xx {
        opts = opts.if_present();
    }
    let outcome = backend.set(key, stored(&value), opts).await?;
    Ok(outcome != SetOutcome::NotSet)
}

/// `SET key value [NX|XX] [GET] [EX s|PX ms|EXAT t|PXAT t|KEEPTTL]`.
pub async fn set(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Result {
    let o = Options::parse(&args[3..], true)?;
    let ttl = o.ttl(ctx, "set")?;
    let key = ctx.key(&args[1])?;
    ctx.check_value_len(args[2].len())?;
    if !o.get {
        let done = write(ctx, key, args[2].clone(), ttl, o.nx, o.xx).await?;
        return Ok(if done { Reply::ok() } else { Reply::Null });
    }
    let value = stored(&args[2]);
    let (nx, xx) = (o.nx, o.xx);
    let (_, old) = ctx
        .state
        .backend()
        .compute(key, move |old| {
            let applies = !((nx && old.is_some()) || (xx && old.is_none()));
            let change = match (applies, ttl) {
                (false, _) => Compute::Keep,
                (true, Ttl::Gone) => Compute::Delete,
                (true, ttl) => Compute::SetWith(value.clone(), ttl.expiry()),
            };
            (change, old.cloned())
        })
        .await?;
    Ok(old.map_or(Reply::Null, bulk))
}

/// `SETNX key value`: 1 when the key was set, 0 when it existed.
pub async fn setnx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Result {
    let key = ctx.key(&args[1])?;
    ctx.check_value_len(args[2].len())?;
    let done = write(ctx, key, args[2].clone(), Ttl::Default, true, false).await?;
    Ok(Reply::Int(i64::from(done)))
}

async fn set_for(ctx: &mut Ctx<'_>, args: &[Bytes], given: Given, command: &str) -> Result {
    let ttl = deadline(ctx, given, command)?;
    let key = ctx.key(&args[1])?;
    ctx.check_value_len(args[3].len())?;
    write(ctx, key, args[3].clone(), ttl, false, false).await?;
    Ok(Reply::ok())
}

/// `SETEX key seconds value`.
pub async fn setex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Result {
    let seconds = int(&args[2])?;
    set_for(ctx, args, Given::Ex(seconds), "setex").await
}

/// `PSETEX key milliseconds value`.
pub async fn psetex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Result {
    let ms = int(&args[2])?;
    set_for(ctx, args, Given::Px(ms), "psetex").await
}

/// `GETEX key [EX s|PX ms|EXAT t|PXAT t|PERSIST]`: the value, and the key's TTL
/// changed as asked.
pub async fn getex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Result {
    let o = Options::parse(&args[2..], false)?;
    let ttl = o.ttl(ctx, "getex")?;
    if ttl == Ttl::Default {
        return get(ctx, args).await;
    }
    let Some(key) = ctx.existing_key(&args[1]) else {
        return Ok(Reply::Null);
    };
    let (_, old) = ctx
        .state
        .backend()
        .compute(key, move |old| match (old, ttl) {
            (None, _) => (Compute::Keep, None),
            (Some(v), Ttl::Gone) => (Compute::Delete, Some(v.clone())),
            (Some(v), ttl) => (Compute::SetWith(v.clone(), ttl.expiry()), Some(v.clone())),
        })
        .await?;
    Ok(old.map_or(Reply::Null, bulk))
}

/// `GETDEL key`: the value, and the key deleted.
pub async fn getdel(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Result {
    let Some(key) = ctx.existing_key(&args[1]) else {
        return Ok(Reply::Null);
    };
    let (_, old) = ctx
        .state
        .backend()
        .compute(key, |old| match old {
            None => (Compute::Keep, None),
            Some(v) => (Compute::Delete, Some(v.clone())),
        })
        .await?;
    Ok(old.map_or(Reply::Null, bulk))
}

/// `GETSET key value`: the old value; the new one with the default TTL.
pub async fn getset(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Result {
    let key = ctx.key(&args[1])?;
    ctx.check_value_len(args[2].len())?;
    let value = stored(&args[2]);
    let (_, old) = ctx
        .state
        .backend()
        .compute(key, move |old| {
            (
                Compute::SetWith(value.clone(), Expiry::Default),
                old.cloned(),
            )
        })
        .await?;
    Ok(old.map_or(Reply::Null, bulk))
}

/// `MGET key...`: each value, or nil.
pub async fn mget(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Result {
    let keys: Vec<Option<&str>> = args[1..].iter().map(|a| ctx.existing_key(a)).collect();
    let valid: Vec<&str> = keys.iter().flatten().copied().collect();
    let mut found = ctx.state.backend().get_many(&valid).await?.into_iter();
    let replies = keys
        .iter()
        .map(|key| match key {
            Some(_) => found.next().flatten().map_or(Reply::Null, bulk),
            None => Reply::Null,
        })
        .collect();
    Ok(Reply::Array(replies))
}

/// The pairs of `MSET`/`MSETNX`, all checked before any is written.
fn pairs(
    ctx: &Ctx<'_>,
    args: &[Bytes],
    command: &str,
) -> std::result::Result<Vec<(String, kvcore::Bytes)>, Error> {
    if args.len().is_multiple_of(2) {
        return Err(Error::wrong_args(command));
    }
    args[1..]
        .chunks(2)
        .map(|pair| {
            let key = ctx.key(&pair[0])?;
            ctx.check_value_len(pair[1].len())?;
            Ok((key.to_owned(), stored(&pair[1])))
        })
        .collect()
}

/// `MSET key value...`: all written, overwriting, with the default TTL.
pub async fn mset(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Result {
    let items = pairs(ctx, args, "mset")?;
    ctx.state.backend().set_many(items, Expiry::Default).await?;
    Ok(Reply::ok())
}

/// `MSETNX key value...`: all written if none of the keys exists (1), else none (0).
pub async fn msetnx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Result {
    let items = pairs(ctx, args, "msetnx")?;
    let applied = ctx.state.backend().insert_all_absent(items, None).await?;
    Ok(Reply::Int(i64::from(applied.value)))
}

/// `STRLEN key`: the value's length in bytes, 0 without the key.
pub async fn strlen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Result {
    let len = match ctx.existing_key(&args[1]) {
        Some(key) => ctx
            .state
            .backend()
            .get_with_ttl(key)
            .await?
            .map_or(0, |(v, _)| v.len()),
        None => 0,
    };
    Ok(Reply::Int(i64::try_from(len).unwrap_or(i64::MAX)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(list: &[&str]) -> Vec<Bytes> {
        list.iter()
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect()
    }

    fn parse(list: &[&str], for_set: bool) -> std::result::Result<Options, Error> {
        Options::parse(&words(list), for_set)
    }

    #[test]
    fn set_options_combine_as_in_redis() {
        let o = parse(&["nx", "GET", "ex", "10"], true).unwrap();
        assert!(o.nx && o.get && !o.xx);
        assert_eq!(o.given, Some(Given::Ex(10)));
        assert!(parse(&["NX", "XX"], true).is_err());
        assert!(parse(&["EX", "10", "PX", "5"], true).is_err());
        assert!(parse(&["EX", "10", "KEEPTTL"], true).is_err());
        assert!(parse(&["KEEPTTL", "EX", "10"], true).is_err());
        assert!(parse(&["EX"], true).is_err());
        assert_eq!(parse(&["EX", "x"], true).unwrap_err(), Error::not_integer());
        // The same option twice: the last one counts.
        assert_eq!(
            parse(&["EX", "1", "EX", "2"], true).unwrap().given,
            Some(Given::Ex(2))
        );
        assert!(parse(&["PERSIST"], true).is_err());
        assert!(parse(&["PERSIST"], false).unwrap().persist);
        assert!(parse(&["PERSIST", "EX", "1"], false).is_err());
        assert!(parse(&["NX"], false).is_err());
    }
}
