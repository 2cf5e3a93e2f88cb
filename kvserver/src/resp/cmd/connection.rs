//! `PING`, `ECHO`, `HELLO`, `AUTH`, `SELECT`, `QUIT`, `RESET`.
//!
//! kvserver has one user, Redis's `default`, whose password is `--auth-token`: with
//! a token, `AUTH token`, `AUTH default token` and `HELLO 3 AUTH default token`
//! authenticate; without one, `default` needs no password (any is accepted, as
//! Redis accepts any for a user without one). Another user name is `WRONGPASS`.

use bytes::Bytes;
use subtle::ConstantTimeEq;

use super::args::{Error, is};
use super::{Ctx, Result};
use crate::resp::frame::{Protocol, Reply};

/// The Redis version kvserver answers as, so that clients enable the commands it has.
pub const REDIS_VERSION: &str = "7.2.0";

const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

/// `PING [message]`.
pub async fn ping(_: &mut Ctx<'_>, args: &[Bytes]) -> Result {
    match args {
        [_] => Ok(Reply::simple("PONG")),
        [_, message] => Ok(Reply::Bulk(message.clone())),
        _ => Err(Error::wrong_args("ping")),
    }
}

/// `ECHO message`.
pub async fn echo(_: &mut Ctx<'_>, args: &[Bytes]) -> Result {
    Ok(Reply::Bulk(args[1].clone()))
}

/// Whether `user` and `password` are the server's; marks the session when they are.
fn authenticate(ctx: &mut Ctx<'_>, user: &[u8], password: &[u8]) -> std::result::Result<(), Error> {
    if user != b"default" {
        return Err(Error::new(WRONGPASS));
    }
    match ctx.state.auth_token() {
        None => {}
        // Constant time: as long wherever the first difference is.
        Some(token) if bool::from(password.ct_eq(token.as_bytes())) => {}
        Some(_) => return Err(Error::new(WRONGPASS)),
    }
    ctx.session.authenticated = true;
    Ok(())
}

/// `AUTH [username] password`.
pub async fn auth(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Result {
    match args {
        [_, password] => {
            if ctx.state.auth_token().is_none() {
                return Err(Error::new(
                    "ERR AUTH <password> called without any password configured for the \
                     default user. Are you sure your configuration is correct?",
                ));
            }
            authenticate(ctx, b"default", password)?;
        }
        [_, user, password] => authenticate(ctx, user, password)?,
        _ => return Err(Error::syntax()),
    }
    Ok(Reply::ok())
}

/// `HELLO [protover [AUTH username password] [SETNAME clientname]]`.
pub async fn hello(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Result {
    let mut protocol = None;
    let mut at = 1;
    if let Some(version) = args.get(1) {
        let version = crate::resp::number::parse_i64(version)
            .ok_or_else(|| Error::new("ERR Protocol version is not an integer or out of range"))?;
        protocol = Some(match version {
            2 => Protocol::Resp2,
            3 => Protocol::Resp3,
            _ => return Err(Error::new("NOPROTO unsupported protocol version")),
        });
        at = 2;
    }
    let mut credentials = None;
    let mut name = None;
    while at < args.len() {
        let more = args.len() - 1 - at;
        if is(&args[at], "AUTH") && more >= 2 {
            credentials = Some((&args[at + 1], &args[at + 2]));
            at += 3;
        } else if is(&args[at], "SETNAME") && more >= 1 {
            super::client::check_name(&args[at + 1])?;
            name = Some(args[at + 1].clone());
            at += 2;
        } else {
            return Err(Error(format!(
                "ERR Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(&args[at])
            )));
        }
    }
    if let Some((user, password)) = credentials {
        authenticate(ctx, user, password)?;
    }
    if !ctx.session.authenticated {
        return Err(Error::new(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise \
             the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the \
             client and select the RESP protocol version at the same time",
        ));
    }
    if let Some(name) = name {
        ctx.session
            .client
            .update_names(|n| n.name = (!name.is_empty()).then_some(name));
    }
    if let Some(protocol) = protocol {
        ctx.session.protocol = protocol;
        ctx.session.client.set_protocol(protocol);
    }
    Ok(Reply::Map(vec![
        (Reply::bulk_static("server"), Reply::bulk_static("redis")),
        (
            Reply::bulk_static("version"),
            Reply::bulk_static(REDIS_VERSION),
        ),
        (
            Reply::bulk_static("proto"),
            Reply::Int(ctx.session.protocol.number()),
        ),
        (
            Reply::bulk_static("id"),
            Reply::Int(i64::try_from(ctx.session.client.id).unwrap_or(i64::MAX)),
        ),
        (Reply::bulk_static("mode"), Reply::bulk_static("standalone")),
        (Reply::bulk_static("role"), Reply::bulk_static("master")),
        (Reply::bulk_static("modules"), Reply::Array(Vec::new())),
    ]))
}

/// A database index (`SELECT`, `COPY ... DB`): only 0 exists.
pub fn database(arg: &[u8]) -> std::result::Result<(), Error> {
    let index = super::args::int(arg)?;
    if i32::try_from(index).is_err() {
        return Err(Error::new(
            "ERR value is out of range, value must between -2147483648 and 2147483647",
        ));
    }
    if index != 0 {
        return Err(Error::new("ERR DB index is out of range"));
    }
    Ok(())
}

/// `SELECT index`: database 0 is the only one.
pub async fn select(_: &mut Ctx<'_>, args: &[Bytes]) -> Result {
    database(&args[1])?;
    Ok(Reply::ok())
}

/// `QUIT`: `+OK`, then the connection closes.
pub async fn quit(ctx: &mut Ctx<'_>, _: &[Bytes]) -> Result {
    ctx.session.close = true;
    Ok(Reply::ok())
}

/// `RESET`: back to RESP2, no name, and (with a token) not authenticated.
pub async fn reset(ctx: &mut Ctx<'_>, _: &[Bytes]) -> Result {
    ctx.session.protocol = Protocol::Resp2;
    ctx.session.client.set_protocol(Protocol::Resp2);
    ctx.session.client.update_names(|n| n.name = None);
    ctx.session.authenticated = ctx.state.auth_token().is_none();
    Ok(Reply::simple("RESET"))
}
