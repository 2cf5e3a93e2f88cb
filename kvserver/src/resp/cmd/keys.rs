//! `DEL`, `UNLINK`, `EXISTS`, `TYPE`, `KEYS`, `SCAN`, `RANDOMKEY`, `RENAME`,
//! `RENAMENX`, `COPY`.
//!
//! Every key is a string key here, so `TYPE` answers `string` or `none`, and `SCAN
//! ... TYPE` finds keys only for `string`. A key this server cannot hold (not UTF-8,
//! empty, longer than `--max-key-bytes`) does not exist: reads find nothing, and
//! writes are refused with an error.
//!
//! Listing goes through the store's scan, which counts as a read: with `--sliding`,
//! `KEYS` and `SCAN` restart the TTLs of the keys they return, as `GET /keys` does.

use std::hash::{BuildHasher, RandomState};

use bytes::Bytes;
use kvcore::{Compute, Pattern};

use super::args::{Error, int, is};
use super::{Ctx, Result};
use crate::resp::frame::Reply;

/// Keys `KEYS` and `RANDOMKEY` read per page.
const PAGE: usize = 10_000;

/// A Redis glob pattern as a store pattern: `*`, `?`, `[...]` and `\` mean what
/// they mean in Redis; `$`, which the store also reads as `*`, is taken literally.
pub fn redis_pattern(arg: &[u8]) -> std::result::Result<Pattern, Error> {
    let text =
        std::str::from_utf8(arg).map_err(|_| Error::new("ERR patterns must be UTF-8 text here"))?;
    let mut escaped = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                escaped.push('\\');
                if let Some(next) = chars.next() {
                    escaped.push(next);
                }
            }
            '$' => escaped.push_str("\\$"),
            c => escaped.push(c),
        }
    }
    Pattern::new(&escaped).map_err(|e| Error(format!("ERR {e}")))
}

/// `DEL key...`, `UNLINK key...`: how many of the keys existed.
pub async fn del(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Result {
    let mut deleted = 0;
    for arg in &args[1..] {
        if let Some(key) = ctx.existing_key(arg)
            && ctx.state.backend().delete(key).await?
        {
            deleted += 1;
        }
    }
    Ok(Reply::Int(deleted))
}

/// `EXISTS key...`: how many of the keys exist, a key named twice counting twice.
pub async fn exists(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Result {
    let mut found = 0;
    for arg in &args[1..] {
        if let Some(key) = ctx.existing_key(arg)
            && ctx.state.backend().contains(key).await?
        {
            found += 1;
        }
    }
    Ok(Reply::Int(found))
}

/// `TYPE key`: `string`, or `none`.
pub async fn kind(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Result {
    let exists = match ctx.existing_key(&args[1]) {
        Some(key) => ctx.state.backend().contains(key).await?,
        None => false,
    };
    Ok(Reply::simple(if exists { "string" } else { "none" }))
}

/// `KEYS pattern`: every key matching the pattern.
pub async fn keys(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Result {
    let pattern = redis_pattern(&args[1])?;
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = ctx
            .state
            .backend()
            .scan(Some(&pattern), cursor.as_deref(), PAGE)
            .await?;
        out.extend(page.items.into_iter().map(|(k, _)| Reply::bulk(k)));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(Reply::Array(out)),
        }
    }
}

/// `SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]`: a page of keys and the
/// cursor of the next (`0` at the end). `COUNT` (default 10) is how many keys a
/// page holds at most; a page may hold fewer, even none, before the end.
pub async fn scan(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Result {
    let number = std::str::from_utf8(&args[1])
        .ok()
        .and_then(|t| t.parse::<u64>().ok())
        .ok_or_else(|| Error::new("ERR invalid cursor"))?;
    let mut pattern = None;
    let mut count: usize = 10;
    let mut strings = true;
    let mut at = 2;
    while at < args.len() {
        let Some(value) = args.get(at + 1) else {
            return Err(Error::syntax());
        };
        if is(&args[at], "COUNT") {
            let n = int(value)?;
            if n < 1 {
                return Err(Error::syntax());
            }
            count = usize::try_from(n).unwrap_or(usize::MAX).min(1 << 20);
        } else if is(&args[at], "MATCH") {
            pattern = Some(redis_pattern(value)?);
        } else if is(&args[at], "TYPE") {
            strings = is(value, "string");
        } else {
            return Err(Error::syntax());
        }
        at += 2;
    }
    let cursor = match number {
        0 => None,
        n => Some(
            ctx.server
                .cursors
                .get(n)
                .ok_or_else(|| Error::new("ERR invalid cursor"))?,
        ),
    };
    if !strings {
        return Ok(scan_reply(0, Vec::new()));
    }
    let page = ctx
        .state
        .backend()
        .scan(pattern.as_ref(), cursor.as_deref(), count)
        .await?;
    let next = page.next_cursor.map_or(0, |c| ctx.server.cursors.issue(c));
    let keys = page
        .items
        .into_iter()
        .map(|(k, _)| Reply::bulk(k))
        .collect();
    Ok(scan_reply(next, keys))
}

fn scan_reply(next: u64, keys: Vec<Reply>) -> Reply {
    Reply::Array(vec![Reply::bulk(next.to_string()), Reply::Array(keys)])
}

/// `RANDOMKEY`: a key chosen uniformly at random, or nil when there is none. It
/// pages through the keys up to the one chosen, so it takes time in proportion to
/// their number.
pub async fn randomkey(ctx: &mut Ctx<'_>, _: &[Bytes]) -> Result {
    let backend = ctx.state.backend();
    let len = backend.len().await?;
    if len == 0 {
        return Ok(Reply::Null);
    }
    let mut skip = usize::try_from(RandomState::new().hash_one(len)).unwrap_or(0) % len;
    let mut cursor: Option<String> = None;
    let mut last = None;
    loop {
        let page = backend.scan(None, cursor.as_deref(), PAGE).await?;
        let n = page.items.len();
        if skip < n {
            return Ok(Reply::bulk(page.items[skip].0.clone()));
        }
        skip -= n;
        last = page.items.into_iter().last().map(|(k, _)| k).or(last);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            // Keys expired or deleted meanwhile: the last one seen will do.
            None => return Ok(Reply::bulk_or_null(last.map(Bytes::from))),
        }
    }
}

/// `ERR no such key`.
fn no_such_key() -> Error {
    Error::new("ERR no such key")
}

/// Writes the value and TTL of `src` under `dst` (only if `dst` is free, unless
/// `replace`); `None` without `src`, `Some(false)` when `dst` was taken.
async fn copy_value(
    ctx: &Ctx<'_>,
    src: &str,
    dst: &str,
    replace: bool,
) -> std::result::Result<Option<(bool, kvcore::Bytes)>, Error> {
    let backend = ctx.state.backend();
    let Some((value, ttl)) = backend.get_with_ttl(src).await? else {
        return Ok(None);
    };
    let mut opts = match ttl {
        Some(ttl) => kvcore::SetOptions::new().ttl(ttl),
        None => kvcore::SetOptions::new().no_ttl(),
    };
    if !replace {
        opts = opts.if_absent();
    }
    let outcome = backend.set(dst, value.clone(), opts).await?;
    Ok(Some((outcome != kvcore::SetOutcome::NotSet, value)))
}

/// Moves `src` to `dst`: the value is written under the new name first, then the
/// old name is removed, unless a writer changed it meanwhile (then the old name
/// keeps the newer value). Not atomic across the two names: a reader may see both
/// for a moment.
async fn rename_generic(ctx: &mut Ctx<'_>, args: &[Bytes], nx: bool) -> Result {
    let src = ctx.existing_key(&args[1]).ok_or_else(no_such_key)?;
    let dst = ctx.key(&args[2])?;
    if src == dst {
        return if ctx.state.backend().contains(src).await? {
            Ok(if nx { Reply::Int(0) } else { Reply::ok() })
        } else {
            Err(no_such_key())
        };
    }
    let Some((moved, value)) = copy_value(ctx, src, dst, !nx).await? else {
        return Err(no_such_key());
    };
    if !moved {
        return Ok(Reply::Int(0));
    }
    ctx.state
        .backend()
        .compute(src, move |now| {
            let same = now.is_some_and(|now| now == &value);
            (if same { Compute::Delete } else { Compute::Keep }, ())
        })
        .await?;
    Ok(if nx { Reply::Int(1) } else { Reply::ok() })
}

/// `RENAME key newkey`.
pub async fn rename(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Result {
    rename_generic(ctx, args, false).await
}

/// `RENAMENX key newkey`: 1 when renamed, 0 when the new name was taken.
pub async fn renamenx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Result {
    rename_generic(ctx, args, true).await
}

/// `COPY source destination [DB 0] [REPLACE]`: 1 when copied, with its TTL.
pub async fn copy(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Result {
    let mut replace = false;
    let mut at = 3;
    while at < args.len() {
        if is(&args[at], "REPLACE") {
            replace = true;
        } else if is(&args[at], "DB") && at + 1 < args.len() {
            super::connection::database(&args[at + 1])?;
            at += 1;
        } else {
            return Err(Error::syntax());
        }
        at += 1;
    }
    if args[1] == args[2] {
        return Err(Error::new(
            "ERR source and destination objects are the same",
        ));
    }
    let Some(src) = ctx.existing_key(&args[1]) else {
        return Ok(Reply::Int(0));
    };
    let dst = ctx.key(&args[2])?;
    let copied = copy_value(ctx, src, dst, replace).await?;
    Ok(Reply::Int(i64::from(copied.is_some_and(|(done, _)| done))))
}

impl Ctx<'_> {
    /// A key argument for a read: `None` when it names no key this server can hold,
    /// which therefore does not exist.
    pub fn existing_key<'k>(&self, arg: &'k [u8]) -> Option<&'k str> {
        let key = std::str::from_utf8(arg).ok()?;
        (!key.is_empty() && key.len() <= self.state.limits().max_key_bytes).then_some(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_mean_what_they_mean_in_redis() {
        let p = redis_pattern(b"user:*").unwrap();
        assert!(p.matches("user:1"));
        let p = redis_pattern(b"price$").unwrap();
        assert!(p.matches("price$"));
        assert!(!p.matches("prices"));
        let p = redis_pattern(br"a\*b").unwrap();
        assert!(p.matches("a*b"));
        assert!(!p.matches("axb"));
        let p = redis_pattern(b"h?ll[oa]").unwrap();
        assert!(p.matches("hello") && p.matches("hallo") && !p.matches("hellox"));
        assert!(redis_pattern(b"[abc").is_err());
        assert!(redis_pattern(b"\xff").is_err());
    }
}
