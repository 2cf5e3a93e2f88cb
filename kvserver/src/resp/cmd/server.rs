//! `DBSIZE`, `FLUSHDB`, `FLUSHALL`, `TIME`.

use std::time::UNIX_EPOCH;

use bytes::Bytes;

use super::args::{Error, is};
use super::{Ctx, Result};
use crate::resp::frame::Reply;

/// `DBSIZE`: the number of live keys.
pub async fn dbsize(ctx: &mut Ctx<'_>, _: &[Bytes]) -> Result {
    let n = ctx.state.backend().len().await?;
    Ok(Reply::Int(i64::try_from(n).unwrap_or(i64::MAX)))
}

/// `FLUSHDB [ASYNC|SYNC]`, `FLUSHALL [ASYNC|SYNC]`: every key goes, at once either
/// way (with `--backend`, the Redis database kvserver uses, its own keys aside).
pub async fn flushdb(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Result {
    match args {
        [_] => {}
        [_, mode] if is(mode, "ASYNC") || is(mode, "SYNC") => {}
        _ => return Err(Error::syntax()),
    }
    ctx.state.backend().clear().await?;
    Ok(Reply::ok())
}

/// `TIME`: the server's clock as Unix seconds and microseconds.
pub async fn time(ctx: &mut Ctx<'_>, _: &[Bytes]) -> Result {
    let since = ctx
        .state
        .clock()
        .now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Ok(Reply::Array(vec![
        Reply::bulk(since.as_secs().to_string()),
        Reply::bulk(since.subsec_micros().to_string()),
    ]))
}

/// A container line (`CLIENT`, `CONFIG`) never runs: the lookup takes its
/// subcommand, or refuses it for its arity.
pub async fn container(_: &mut Ctx<'_>, args: &[Bytes]) -> Result {
    Err(Error::unknown_command(args))
}
