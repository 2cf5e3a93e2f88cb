//! `CLIENT SETNAME`, `GETNAME`, `ID`, `SETINFO`, `INFO`, `LIST`, `HELP`.

use bytes::Bytes;

use super::args::{Error, is};
use super::{Ctx, Result};
use crate::resp::frame::Reply;

/// Refuses a name with a space, a line break or another byte outside `!`..`~`, as
/// Redis refuses it.
pub fn check_name(name: &[u8]) -> std::result::Result<(), Error> {
    if name.iter().any(|&b| !(b'!'..=b'~').contains(&b)) {
        return Err(Error::new(
            "ERR Client names cannot contain spaces, newlines or special characters.",
        ));
    }
    Ok(())
}

/// `CLIENT SETNAME name` (an empty name removes it).
pub async fn setname(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Result {
    let name = &args[2];
    check_name(name)?;
    ctx.session
        .client
        .update_names(|n| n.name = (!name.is_empty()).then(|| name.clone()));
    Ok(Reply::ok())
}

/// `CLIENT GETNAME`.
pub async fn getname(ctx: &mut Ctx<'_>, _: &[Bytes]) -> Result {
    Ok(Reply::bulk_or_null(ctx.session.client.names().name))
}

/// `CLIENT ID`.
pub async fn id(ctx: &mut Ctx<'_>, _: &[Bytes]) -> Result {
    Ok(Reply::Int(
        i64::try_from(ctx.session.client.id).unwrap_or(i64::MAX),
    ))
}

/// `CLIENT SETINFO LIB-NAME name` or `CLIENT SETINFO LIB-VER version`.
pub async fn setinfo(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Result {
    let value = args[3].clone();
    let (attribute, is_name) = if is(&args[2], "LIB-NAME") {
        ("lib-name", true)
    } else if is(&args[2], "LIB-VER") {
        ("lib-ver", false)
    } else {
        return Err(Error(format!(
            "ERR Unrecognized option '{}'",
            String::from_utf8_lossy(&args[2])
        )));
    };
    if value.iter().any(|&b| !(b'!'..=b'~').contains(&b)) {
        return Err(Error(format!(
            "ERR {attribute} cannot contain spaces, newlines or special characters."
        )));
    }
    let value = (!value.is_empty()).then_some(value);
    ctx.session.client.update_names(|n| {
        if is_name {
            n.lib_name = value;
        } else {
            n.lib_ver = value;
        }
    });
    Ok(Reply::ok())
}

/// `CLIENT INFO`: this connection's `CLIENT LIST` line.
pub async fn info(ctx: &mut Ctx<'_>, _: &[Bytes]) -> Result {
    let line = ctx.session.client.line(ctx.server.now_ms()) + "\n";
    Ok(Reply::Verbatim(Bytes::from(line)))
}

/// `CLIENT LIST [TYPE normal|master|replica|pubsub] [ID id...]`.
pub async fn list(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Result {
    let mut ids: Option<Vec<u64>> = None;
    let mut only_none = false;
    match args.get(2) {
        None => {}
        Some(word) if is(word, "TYPE") && args.len() == 4 => {
            let kind = &args[3];
            if is(kind, "normal") {
            } else if ["master", "replica", "slave", "pubsub"]
                .iter()
                .any(|k| is(kind, k))
            {
                only_none = true;
            } else {
                return Err(Error(format!(
                    "ERR Unknown client type '{}'",
                    String::from_utf8_lossy(kind)
                )));
            }
        }
        Some(word) if is(word, "ID") && args.len() >= 4 => {
            let mut list = Vec::new();
            for id in &args[3..] {
                let id = crate::resp::number::parse_i64(id)
                    .filter(|&n| n > 0)
                    .ok_or_else(|| Error::new("ERR Invalid client ID"))?;
                list.push(id.unsigned_abs());
            }
            ids = Some(list);
        }
        Some(_) => return Err(Error::syntax()),
    }
    let now = ctx.server.now_ms();
    let mut text = String::new();
    if !only_none {
        for client in ctx.server.clients.list() {
            if ids.as_ref().is_none_or(|ids| ids.contains(&client.id)) {
                text.push_str(&client.line(now));
                text.push('\n');
            }
        }
    }
    Ok(Reply::Verbatim(Bytes::from(text)))
}

/// `CLIENT HELP`.
pub async fn help(_: &mut Ctx<'_>, _: &[Bytes]) -> Result {
    Ok(help_lines(
        "CLIENT",
        &[
            "GETNAME",
            "    Return the name of the current connection.",
            "ID",
            "    Return the ID of the current connection.",
            "INFO",
            "    Return information about the current client connection.",
            "LIST [TYPE <NORMAL|MASTER|REPLICA|PUBSUB>] [ID <id> [<id> ...]]",
            "    Return information about client connections.",
            "SETINFO <LIB-NAME|LIB-VER> <value>",
            "    Record the name or version of the client library.",
            "SETNAME <name>",
            "    Assign the name <name> to the current connection.",
        ],
    ))
}

/// A `HELP` reply: a header line, the lines, and `HELP` itself, as Redis lists them.
pub fn help_lines(command: &str, lines: &[&str]) -> Reply {
    let mut out = vec![Reply::simple_owned(format!(
        "{command} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    ))];
    out.extend(lines.iter().map(|l| Reply::simple_owned((*l).to_owned())));
    out.push(Reply::simple("HELP"));
    out.push(Reply::simple("    Print this help."));
    Reply::Array(out)
}
