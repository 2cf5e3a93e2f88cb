//! `INCR`, `INCRBY`, `DECR`, `DECRBY`, `INCRBYFLOAT`.
//!
//! The integer commands are the store's `incr`, the same operation as `POST
//! /keys/{key}/incr`, so both protocols count on the same integers whoever wrote
//! them: a value is an integer when it is canonical decimal text (`42`, `-7`). A
//! new key gets the default TTL; an existing one keeps its own. `INCRBYFLOAT`
//! adds decimals as Redis does (see [`crate::resp::number`]).

use bytes::Bytes;
use kvcore::Compute;

use super::args::{Error, int};
use super::{Ctx, Result};
use crate::error::ErrorCode;
use crate::resp::frame::Reply;
use crate::resp::number::{FloatError, add_decimal};

async fn incr_by(ctx: &mut Ctx<'_>, key: &[u8], by: i64) -> Result {
    let key = ctx.key(key)?;
    match ctx.state.backend().incr(key, by, None).await {
        Ok(applied) => Ok(Reply::Int(applied.value)),
        Err(e) if e.code() == ErrorCode::NotAnInteger => {
            // The store says which: the value is not an integer, or the sum would
            // leave the 64-bit range.
            if e.message().contains("would overflow") {
                Err(Error::overflow())
            } else {
                Err(Error::not_integer())
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// `INCR key`.
pub async fn incr(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Result {
    incr_by(ctx, &args[1], 1).await
}

/// `DECR key`.
pub async fn decr(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Result {
    incr_by(ctx, &args[1], -1).await
}

/// `INCRBY key increment`.
pub async fn incrby(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Result {
    let by = int(&args[2])?;
    incr_by(ctx, &args[1], by).await
}

/// `DECRBY key decrement`.
pub async fn decrby(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Result {
    let by = int(&args[2])?;
    let by = by
        .checked_neg()
        .ok_or_else(|| Error::new("ERR decrement would overflow"))?;
    incr_by(ctx, &args[1], by).await
}

/// `INCRBYFLOAT key increment`: the new value, as text.
pub async fn incrbyfloat(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Result {
    let key = ctx.key(&args[1])?;
    let increment = args[2].clone();
    let (_, outcome) = ctx
        .state
        .backend()
        .compute(key, move |old| {
            let current = old.map_or(&b"0"[..], |v| &v[..]);
            match add_decimal(current, &increment) {
                Ok(text) => {
                    let value = kvcore::Bytes::from(text);
                    (Compute::Set(value.clone()), Ok(value))
                }
                Err(FloatError::NotAFloat) => (Compute::Keep, Err(Error::not_float())),
                Err(FloatError::NanOrInfinity) => (
                    Compute::Keep,
                    Err(Error::new("ERR increment would produce NaN or Infinity")),
                ),
            }
        })
        .await?;
    Ok(super::args::bulk(outcome?))
}
