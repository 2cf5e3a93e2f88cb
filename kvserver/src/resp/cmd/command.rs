//! `COMMAND`, `COMMAND COUNT`, `INFO`, `DOCS`, `LIST`, `GETKEYS`, `HELP`: the command
//! table described as Redis 7 describes its own, which `redis-cli` reads for its
//! help and hints and cluster-aware clients read for key positions.

use bytes::Bytes;

use super::args::{Error, is};
use super::{COMMANDS, CONTAINER, Ctx, Result, Spec, WRITE, docs, find, lookup};
use crate::resp::frame::Reply;

fn top_level() -> impl Iterator<Item = &'static Spec> {
    COMMANDS.iter().filter(|s| !s.name.contains('|'))
}

fn int_of(n: usize) -> Reply {
    Reply::Int(i64::try_from(n).unwrap_or(i64::MAX))
}

/// The `COMMAND INFO` entry of `spec`.
fn info_of(spec: &Spec) -> Reply {
    let (first, last, step) = spec.keys;
    let mut key_specs = Vec::new();
    if first > 0 {
        let access = if spec.has(WRITE) { "RW" } else { "RO" };
        let lastkey = if last < 0 { last } else { last - first };
        key_specs.push(Reply::Map(vec![
            (
                Reply::bulk_static("flags"),
                Reply::Set(vec![Reply::simple(access), Reply::simple("access")]),
            ),
            (
                Reply::bulk_static("begin_search"),
                Reply::Map(vec![
                    (Reply::bulk_static("type"), Reply::bulk_static("index")),
                    (
                        Reply::bulk_static("spec"),
                        Reply::Map(vec![(
                            Reply::bulk_static("index"),
                            Reply::Int(first.into()),
                        )]),
                    ),
                ]),
            ),
            (
                Reply::bulk_static("find_keys"),
                Reply::Map(vec![
                    (Reply::bulk_static("type"), Reply::bulk_static("range")),
                    (
                        Reply::bulk_static("spec"),
                        Reply::Map(vec![
                            (Reply::bulk_static("lastkey"), Reply::Int(lastkey.into())),
                            (Reply::bulk_static("keystep"), Reply::Int(step.into())),
                            (Reply::bulk_static("limit"), Reply::Int(0)),
                        ]),
                    ),
                ]),
            ),
        ]));
    }
    Reply::Array(vec![
        Reply::bulk_static(spec.name),
        Reply::Int(spec.arity.into()),
        Reply::Set(spec.flag_names().map(Reply::simple).collect()),
        Reply::Int(first.into()),
        Reply::Int(last.into()),
        Reply::Int(step.into()),
        Reply::Set(
            spec.acl_categories()
                .into_iter()
                .map(Reply::simple)
                .collect(),
        ),
        Reply::Set(Vec::new()),
        Reply::Array(key_specs),
        Reply::Array(spec.subcommands().map(info_of).collect()),
    ])
}

/// The `COMMAND DOCS` entry of `spec`.
fn docs_of(spec: &Spec) -> Reply {
    let mut map = vec![
        (
            Reply::bulk_static("summary"),
            Reply::bulk_static(spec.summary),
        ),
        (Reply::bulk_static("since"), Reply::bulk_static(spec.since)),
        (Reply::bulk_static("group"), Reply::bulk_static(spec.group)),
    ];
    // The table's lines are checked by a test; a line that did not parse would show
    // no arguments rather than fail the command.
    let arguments = docs::arguments(spec.syntax).unwrap_or_default();
    if !arguments.is_empty() {
        map.push((
            Reply::bulk_static("arguments"),
            Reply::Array(arguments.iter().map(docs::Arg::to_reply).collect()),
        ));
    }
    if spec.has(CONTAINER) {
        map.push((
            Reply::bulk_static("subcommands"),
            Reply::Map(
                spec.subcommands()
                    .map(|sub| (Reply::bulk_static(sub.name), docs_of(sub)))
                    .collect(),
            ),
        ));
    }
    Reply::Map(map)
}

/// `COMMAND`: every command's entry.
pub async fn command(_: &mut Ctx<'_>, _: &[Bytes]) -> Result {
    Ok(Reply::Array(top_level().map(info_of).collect()))
}

/// `COMMAND COUNT`.
pub async fn count(_: &mut Ctx<'_>, _: &[Bytes]) -> Result {
    Ok(int_of(top_level().count()))
}

/// `COMMAND INFO [name...]`: each named command's entry, or nil; all without names.
pub async fn info(_: &mut Ctx<'_>, args: &[Bytes]) -> Result {
    if args.len() == 2 {
        return Ok(Reply::Array(top_level().map(info_of).collect()));
    }
    Ok(Reply::Array(
        args[2..]
            .iter()
            .map(|name| find(name).map_or(Reply::Null, info_of))
            .collect(),
    ))
}

/// `COMMAND DOCS [name...]`: a map of each named command's documentation; all
/// without names. Unknown names are left out.
pub async fn docs(_: &mut Ctx<'_>, args: &[Bytes]) -> Result {
    let specs: Vec<&Spec> = if args.len() == 2 {
        top_level().collect()
    } else {
        args[2..].iter().filter_map(|name| find(name)).collect()
    };
    Ok(Reply::Map(
        specs
            .into_iter()
            .map(|spec| (Reply::bulk_static(spec.name), docs_of(spec)))
            .collect(),
    ))
}

/// `COMMAND LIST [FILTERBY MODULE name|ACLCAT category|PATTERN pattern]`.
pub async fn list(_: &mut Ctx<'_>, args: &[Bytes]) -> Result {
    let names = COMMANDS.iter().map(|s| s.name);
    let selected: Vec<&str> = match &args[2..] {
        [] => names.collect(),
        [filterby, kind, value] if is(filterby, "FILTERBY") => {
            if is(kind, "MODULE") {
                Vec::new()
            } else if is(kind, "ACLCAT") {
                let category = format!("@{}", String::from_utf8_lossy(value).to_ascii_lowercase());
                COMMANDS
                    .iter()
                    .filter(|s| s.acl_categories().contains(&category.as_str()))
                    .map(|s| s.name)
                    .collect()
            } else if is(kind, "PATTERN") {
                let pattern = super::keys::redis_pattern(value)?;
                names.filter(|n| pattern.matches(n)).collect()
            } else {
                return Err(Error::syntax());
            }
        }
        _ => return Err(Error::syntax()),
    };
    Ok(Reply::Array(
        selected.into_iter().map(Reply::bulk_static).collect(),
    ))
}

/// `COMMAND GETKEYS command [arg...]`: the keys that command would use.
pub async fn getkeys(_: &mut Ctx<'_>, args: &[Bytes]) -> Result {
    let call = &args[2..];
    let spec = lookup(call).map_err(|e| match find(&call[0]) {
        None => Error::new("ERR Invalid command specified"),
        Some(_) => {
            if e.0.starts_with("ERR wrong number") {
                Error::new("ERR Invalid number of arguments specified for command")
            } else {
                e
            }
        }
    })?;
    let (first, last, step) = spec.keys;
    if first <= 0 {
        return Err(Error::new("ERR The command has no key arguments"));
    }
    let argc = i32::try_from(call.len()).unwrap_or(i32::MAX);
    let last = if last < 0 {
        argc + last
    } else {
        last.min(argc - 1)
    };
    let mut keys = Vec::new();
    let mut at = first;
    while at <= last {
        if let Some(key) = usize::try_from(at).ok().and_then(|i| call.get(i)) {
            keys.push(Reply::Bulk(key.clone()));
        }
        at += step.max(1);
    }
    Ok(Reply::Array(keys))
}

/// `COMMAND HELP`.
pub async fn help(_: &mut Ctx<'_>, _: &[Bytes]) -> Result {
    Ok(super::client::help_lines(
        "COMMAND",
        &[
            "(no subcommand)",
            "    Return details about all commands.",
            "COUNT",
            "    Return the total number of commands in this server.",
            "LIST",
            "    Return a list of all commands in this server.",
            "INFO [<command-name> ...]",
            "    Return details about multiple commands.",
            "DOCS [<command-name> ...]",
            "    Return documentation details about multiple commands.",
            "GETKEYS <full-command>",
            "    Return the keys from a full command.",
        ],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resp::cmd::READONLY;

    #[test]
    fn info_entries_have_redis_seven_fields() {
        let spec = find(b"expire").unwrap();
        let Reply::Array(fields) = info_of(spec) else {
            panic!("not an array")
        };
        assert_eq!(fields.len(), 10);
        assert_eq!(fields[0], Reply::bulk_static("expire"));
        assert_eq!(fields[1], Reply::Int(-3));
        assert!(matches!(&fields[2], Reply::Set(f) if f.contains(&Reply::simple("write"))));
        assert_eq!(fields[3..6], [Reply::Int(1), Reply::Int(1), Reply::Int(1)]);
        let Reply::Array(client) = info_of(find(b"client").unwrap()) else {
            panic!("not an array")
        };
        assert!(matches!(&client[9], Reply::Array(subs) if subs.len() >= 6));
        assert!(!find(b"ttl").unwrap().has(WRITE) && find(b"ttl").unwrap().has(READONLY));
    }
}
