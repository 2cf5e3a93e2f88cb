//! `CONFIG GET`, `SET`, `RESETSTAT`, `HELP`: the settings kvserver has, under the
//! names Redis gives them.
//!
//! | name | value |
//! |---|---|
//! | `timeout` | `--resp-idle-timeout` in whole seconds (0: never); settable |
//! | `maxclients` | the Redis-protocol connection cap (`--max-connections`); settable |
//! | `maxmemory` | `--max-memory` in bytes (`0` without it) |
//! | `maxmemory-policy` | `allkeys-lru` with `--capacity` or `--max-memory`, else `noeviction` |
//! | `appendonly` | `yes` when data persists (the journal), else `no` |
//! | `appendfsync` | `--fsync` |
//! | `save` | empty: there are no RDB snapshots |
//! | `dir` | the data directory (empty when memory only) |
//! | `databases` | `1` |
//! | `port`, `bind` | the Redis-protocol listener's |
//! | `proto-max-bulk-len` | `--max-body-bytes` |
//! | `replica-read-only`, `slave-read-only` | `yes` |
//! | `cluster-enabled` | `no` |
//!
//! Other names match nothing: `CONFIG GET` leaves them out, `CONFIG SET` refuses
//! them. The settable ones change this process only.

use std::time::Duration;

use bytes::Bytes;

use super::args::Error;
use super::{Ctx, Result};
use crate::resp::frame::Reply;

/// The settings `CONFIG SET` changes.
const SETTABLE: &[&str] = &["timeout", "maxclients"];

/// Every setting with its current value.
fn settings(ctx: &Ctx<'_>) -> Vec<(&'static str, String)> {
    let state = ctx.state;
    let mode = state.backend().mode();
    let persists = state.persistence().is_some();
    let timeout = ctx.server.idle_timeout();
    let timeout_s = timeout.as_secs() + u64::from(timeout.subsec_nanos() > 0);
    vec![
        ("timeout", timeout_s.to_string()),
        ("maxclients", ctx.server.max_clients().to_string()),
        ("maxmemory", mode.max_weight.unwrap_or(0).to_string()),
        (
            "maxmemory-policy",
            if mode.capacity.is_some() || mode.max_weight.is_some() {
                "allkeys-lru"
            } else {
                "noeviction"
            }
            .into(),
        ),
        ("appendonly", if persists { "yes" } else { "no" }.into()),
        (
            "appendfsync",
            state
                .persistence()
                .map_or_else(|| "no".to_owned(), |p| p.fsync.to_string()),
        ),
        ("save", String::new()),
        (
            "dir",
            state
                .data_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_default(),
        ),
        ("databases", "1".into()),
        ("port", ctx.server.addr.port().to_string()),
        ("bind", ctx.server.addr.ip().to_string()),
        (
            "proto-max-bulk-len",
            ctx.server.settings.limits.max_request_bytes.to_string(),
        ),
        ("replica-read-only", "yes".into()),
        ("slave-read-only", "yes".into()),
        ("cluster-enabled", "no".into()),
    ]
}

/// `CONFIG GET pattern...`: the settings whose names match any pattern.
pub async fn get(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Result {
    let mut patterns = Vec::new();
    for arg in &args[2..] {
        let lower = arg.to_ascii_lowercase();
        patterns.push(super::keys::redis_pattern(&lower)?);
    }
    let found = settings(ctx)
        .into_iter()
        .filter(|(name, _)| patterns.iter().any(|p| p.matches(name)))
        .map(|(name, value)| (Reply::bulk_static(name), Reply::bulk(value)))
        .collect();
    Ok(Reply::Map(found))
}

/// `CONFIG SET name value...`: all or nothing.
pub async fn set(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Result {
    if !args.len().is_multiple_of(2) {
        return Err(Error::syntax());
    }
    let known: Vec<&str> = settings(ctx).into_iter().map(|(n, _)| n).collect();
    let mut changes = Vec::new();
    for pair in args[2..].chunks(2) {
        let name = String::from_utf8_lossy(&pair[0]).to_ascii_lowercase();
        let failed = |why: &str| {
            Error(format!(
                "ERR CONFIG SET failed (possibly related to argument '{name}') - {why}"
            ))
        };
        if !known.contains(&name.as_str()) {
            return Err(Error(format!(
                "ERR Unknown option or number of arguments for CONFIG SET - '{name}'"
            )));
        }
        if !SETTABLE.contains(&name.as_str()) {
            return Err(failed("can't set immutable config"));
        }
        let value = crate::resp::number::parse_i64(&pair[1])
            .ok_or_else(|| failed("argument couldn't be parsed into an integer"))?;
        let (low, high) = if name == "timeout" {
            (0, i64::from(i32::MAX))
        } else {
            (1, 1_000_000)
        };
        if !(low..=high).contains(&value) {
            return Err(failed(&format!(
                "argument must be between {low} and {high} inclusive"
            )));
        }
        changes.push((name, value.unsigned_abs()));
    }
    for (name, value) in changes {
        match name.as_str() {
            "timeout" => ctx.server.set_idle_timeout(Duration::from_secs(value)),
            _ => ctx
                .server
                .set_max_clients(usize::try_from(value).unwrap_or(usize::MAX)),
        }
    }
    Ok(Reply::ok())
}

/// `CONFIG RESETSTAT`: zeroes the counters of `INFO stats` that this listener keeps.
pub async fn resetstat(ctx: &mut Ctx<'_>, _: &[Bytes]) -> Result {
    ctx.server.counters.reset();
    Ok(Reply::ok())
}

/// `CONFIG HELP`.
pub async fn help(_: &mut Ctx<'_>, _: &[Bytes]) -> Result {
    Ok(super::client::help_lines(
        "CONFIG",
        &[
            "GET <pattern>",
            "    Return parameters matching the glob-like <pattern> and their values.",
            "SET <directive> <value>",
            "    Set the configuration <directive> to <value>.",
            "RESETSTAT",
            "    Reset statistics reported by the INFO command.",
        ],
    ))
}
