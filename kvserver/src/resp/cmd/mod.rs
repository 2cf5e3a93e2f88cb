mod args;
mod bits;
mod client;
mod command;
mod config;
mod connection;
mod counters;
mod docs;
mod expire;
mod info;
mod keys;
mod server;
mod strings;
mod text;

use hashbrown::HashMap;
use std::sync::LazyLock;

use bytes::Bytes;

pub use args::Error;

use super::connection::Session;
use super::frame::Reply;
use super::server::Shared;
use crate::state::AppState;

pub type Result = std::result::Result<Reply, Error>;

pub const WRITE: u32 = 1;
pub const READONLY: u32 = 1 << 1;
pub const FAST: u32 = 1 << 2;
pub const DENYOOM: u32 = 1 << 3;
pub const NO_AUTH: u32 = 1 << 4;
pub const LOADING: u32 = 1 << 5;
pub const STALE: u32 = 1 << 6;
pub const DANGEROUS: u32 = 1 << 7;
pub const CONTAINER: u32 = 1 << 8;
pub const CONN: u32 = 1 << 9;

const FLAG_NAMES: &[(u32, &str)] = &[
    (WRITE, "write"),
    (READONLY, "readonly"),
    (DENYOOM, "denyoom"),
    (NO_AUTH, "no_auth"),
    (LOADING, "loading"),
    (STALE, "stale"),
    (FAST, "fast"),
];

#[derive(Debug)]
pub struct Spec {
    /// Which handler runs it.
    id: Handler,
    /// The name in lower case; `parent|sub` for a subcommand.
    pub name: &'static str,
    /// Redis's arity: `n` exactly `n` words with the name, `-n` at least `n`.
    pub arity: i32,
    /// [`WRITE`], [`READONLY`], [`FAST`]... combined.
    pub flags: u32,
    /// The first word that is a key (0: none), the last (-1: the last word), and the
    /// step between keys.
    pub keys: (i32, i32, i32),
    /// The Redis documentation group (`string`, `generic`, `connection`, `server`).
    pub group: &'static str,
    /// The Redis version that first had it.
    pub since: &'static str,
    /// The arguments after the name, as Redis documents them
    /// (`key value [NX|XX] [GET] [EX seconds|PX milliseconds|KEEPTTL]`).
    pub syntax: &'static str,
    /// One sentence on what it does.
    pub summary: &'static str,
}

impl Spec {
    /// Whether the command has all of `flags`.
    pub fn has(&self, flags: u32) -> bool {
        self.flags & flags == flags
    }

    /// Its place in [`COMMANDS`].
    pub fn index(&self) -> usize {
        let at = self as *const Spec as usize;
        let start = COMMANDS.as_ptr() as usize;
        at.saturating_sub(start) / std::mem::size_of::<Spec>()
    }

    /// The subcommands of a container command.
    pub fn subcommands(&self) -> impl Iterator<Item = &'static Spec> {
        let name = self.name;
        COMMANDS.iter().filter(move |s| {
            s.name
                .split_once('|')
                .is_some_and(|(parent, _)| parent == name)
        })
    }

    /// The flag names `COMMAND INFO` reports.
    pub fn flag_names(&self) -> impl Iterator<Item = &'static str> {
        FLAG_NAMES
            .iter()
            .filter(|(bit, _)| self.flags & bit != 0)
            .map(|(_, name)| *name)
    }

    /// The ACL categories `COMMAND INFO` reports, as Redis derives them.
    pub fn acl_categories(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.has(WRITE) {
            out.push("@write");
        }
        if self.has(READONLY) {
            out.push("@read");
        }
        out.push(match self.group {
            "string" => "@string",
            "generic" => "@keyspace",
            "connection" => "@connection",
            _ => "@admin",
        });
        out.push(if self.has(FAST) { "@fast" } else { "@slow" });
        if self.has(DANGEROUS) {
            out.push("@dangerous");
        }
        out
    }
}

pub struct Ctx<'a> {
    /// The store and the server's settings.
    pub state: &'a AppState,
    /// The listener's clients, counters and settings.
    pub server: &'a Shared,
    /// This connection.
    pub session: &'a mut Session,
}

impl std::fmt::Debug for Ctx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("client", &self.session.client.id)
            .finish_non_exhaustive()
    }
}

macro_rules! commands {
    ($(
        $id:ident => $name:literal, $arity:expr, $flags:expr, ($first:expr, $last:expr, $step:expr),
        $group:literal, $since:literal, $run:path, $syntax:literal, $summary:literal;
    )*) => {
        /// Which handler a [`Spec`] runs.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        enum Handler { $($id,)* }

        /// Every command, subcommands included.
        pub static COMMANDS: &[Spec] = &[$(
            Spec {
                id: Handler::$id,
                name: $name,
                arity: $arity,
                flags: $flags,
                keys: ($first, $last, $step),
                group: $group,
                since: $since,
                syntax: $syntax,
                summary: $summary,
            },
        )*];

        /// Runs the handler of `spec`.
        async fn run(spec: &Spec, ctx: &mut Ctx<'_>, args: &[Bytes]) -> Result {
            match spec.id {
                $(Handler::$id => $run(ctx, args).await,)*
            }
        }
    };
}

commands! {
    // Strings.
    Get => "get", 2, READONLY | FAST, (1, 1, 1), "string", "1.0.0", strings::get,
        "key", "Returns the value of a key.";
    Set => "set", -3, WRITE | DENYOOM, (1, 1, 1), "string", "1.0.0", strings::set,
        "key value [NX|XX] [GET] [EX seconds|PX milliseconds|EXAT unix-time-seconds|PXAT unix-time-milliseconds|KEEPTTL]",
        "Sets the value of a key, with an optional expiry and condition.";
    Setnx => "setnx", 3, WRITE | DENYOOM | FAST, (1, 1, 1), "string", "1.0.0", strings::setnx,
        "key value", "Sets the value of a key only when the key does not exist.";
    Setex => "setex", 4, WRITE | DENYOOM, (1, 1, 1), "string", "2.0.0", strings::setex,
        "key seconds value", "Sets the value and the expiry in seconds of a key.";
    Psetex => "psetex", 4, WRITE | DENYOOM, (1, 1, 1), "string", "2.6.0", strings::psetex,
        "key milliseconds value", "Sets the value and the expiry in milliseconds of a key.";
    Getex => "getex", -2, WRITE | FAST, (1, 1, 1), "string", "6.2.0", strings::getex,
        "key [EX seconds|PX milliseconds|EXAT unix-time-seconds|PXAT unix-time-milliseconds|PERSIST]",
        "Returns the value of a key and changes its expiry.";
    Getdel => "getdel", 2, WRITE | FAST, (1, 1, 1), "string", "6.2.0", strings::getdel,
        "key", "Returns the value of a key and deletes the key.";
    Getset => "getset", 3, WRITE | DENYOOM | FAST, (1, 1, 1), "string", "1.0.0", strings::getset,
        "key value", "Sets the value of a key and returns the value it had.";
    Mget => "mget", -2, READONLY | FAST, (1, -1, 1), "string", "1.0.0", strings::mget,
        "key...", "Returns the values of keys.";
    Mset => "mset", -3, WRITE | DENYOOM, (1, -1, 2), "string", "1.0.1", strings::mset,
        "key value...", "Sets the values of keys.";
    Msetnx => "msetnx", -3, WRITE | DENYOOM, (1, -1, 2), "string", "1.0.1", strings::msetnx,
        "key value...", "Sets the values of keys only when none of the keys exists.";
    Strlen => "strlen", 2, READONLY | FAST, (1, 1, 1), "string", "2.2.0", strings::strlen,
        "key", "Returns the length of a value in bytes.";
    Append => "append", 3, WRITE | DENYOOM | FAST, (1, 1, 1), "string", "2.0.0", text::append,
        "key value", "Appends bytes to the value of a key, creating it if needed.";
    Getrange => "getrange", 4, READONLY, (1, 1, 1), "string", "2.4.0", text::getrange,
        "key start end", "Returns a range of the bytes of a value.";
    Substr => "substr", 4, READONLY, (1, 1, 1), "string", "1.0.0", text::getrange,
        "key start end", "Returns a range of the bytes of a value (the old name of GETRANGE).";
    Setrange => "setrange", 4, WRITE | DENYOOM, (1, 1, 1), "string", "2.2.0", text::setrange,
        "key offset value", "Overwrites part of a value from an offset, padding with zero bytes.";
    Lcs => "lcs", -3, READONLY, (1, 2, 1), "string", "7.0.0", text::lcs,
        "key1 key2 [LEN] [IDX] [MINMATCHLEN min-match-len] [WITHMATCHLEN]",
        "Finds the longest common subsequence of two values.";
    Setbit => "setbit", 4, WRITE | DENYOOM, (1, 1, 1), "bitmap", "2.2.0", bits::setbit,
        "key offset value", "Sets or clears one bit of a value; returns the bit it was.";
    Getbit => "getbit", 3, READONLY | FAST, (1, 1, 1), "bitmap", "2.2.0", bits::getbit,
        "key offset", "Returns one bit of a value.";
    Bitcount => "bitcount", -2, READONLY, (1, 1, 1), "bitmap", "2.6.0", bits::bitcount,
        "key [start end [BYTE|BIT]]", "Counts the set bits of a value, or of a range of it.";
    Bitpos => "bitpos", -3, READONLY, (1, 1, 1), "bitmap", "2.8.7", bits::bitpos,
        "key bit [start [end [BYTE|BIT]]]", "Finds the first set or clear bit of a value.";
    Incr => "incr", 2, WRITE | DENYOOM | FAST, (1, 1, 1), "string", "1.0.0", counters::incr,
        "key", "Adds one to the integer value of a key (a missing key counts as 0).";
    Incrby => "incrby", 3, WRITE | DENYOOM | FAST, (1, 1, 1), "string", "1.0.0", counters::incrby,
        "key increment", "Adds a number to the integer value of a key.";
    Decr => "decr", 2, WRITE | DENYOOM | FAST, (1, 1, 1), "string", "1.0.0", counters::decr,
        "key", "Subtracts one from the integer value of a key.";
    Decrby => "decrby", 3, WRITE | DENYOOM | FAST, (1, 1, 1), "string", "1.0.0", counters::decrby,
        "key decrement", "Subtracts a number from the integer value of a key.";
    Incrbyfloat => "incrbyfloat", 3, WRITE | DENYOOM | FAST, (1, 1, 1), "string", "2.6.0",
        counters::incrbyfloat, "key increment", "Adds a decimal number to the value of a key.";

    // Keys.
    Del => "del", -2, WRITE, (1, -1, 1), "generic", "1.0.0", keys::del,
        "key...", "Deletes keys; returns how many existed.";
    Unlink => "unlink", -2, WRITE | FAST, (1, -1, 1), "generic", "4.0.0", keys::del,
        "key...", "Deletes keys (as DEL: memory is freed at once here).";
    Exists => "exists", -2, READONLY | FAST, (1, -1, 1), "generic", "1.0.0", keys::exists,
        "key...", "Counts how many of the keys exist (a key named twice counts twice).";
    Type => "type", 2, READONLY | FAST, (1, 1, 1), "generic", "1.0.0", keys::kind,
        "key", "Returns the type of a key: string, or none.";
    Rename => "rename", 3, WRITE, (1, 2, 1), "generic", "1.0.0", keys::rename,
        "key newkey", "Renames a key, replacing any key of the new name.";
    Renamenx => "renamenx", 3, WRITE | FAST, (1, 2, 1), "generic", "1.0.0", keys::renamenx,
        "key newkey", "Renames a key only when the new name is free.";
    Copy => "copy", -3, WRITE | DENYOOM, (1, 2, 1), "generic", "6.2.0", keys::copy,
        "source destination [DB destination-db] [REPLACE]", "Copies the value of a key to another key.";
    Keys => "keys", 2, READONLY | DANGEROUS, (0, 0, 0), "generic", "1.0.0", keys::keys,
        "pattern", "Returns every key matching a glob pattern.";
    Scan => "scan", -2, READONLY, (0, 0, 0), "generic", "2.8.0", keys::scan,
        "cursor [MATCH pattern] [COUNT count] [TYPE type]", "Iterates over the keys, a page at a time.";
    Randomkey => "randomkey", 1, READONLY, (0, 0, 0), "generic", "1.0.0", keys::randomkey,
        "", "Returns a key chosen at random.";

    // Expiry.
    Expire => "expire", -3, WRITE | FAST, (1, 1, 1), "generic", "1.0.0", expire::expire,
        "key seconds [NX|XX|GT|LT]", "Sets the expiry of a key in seconds from now.";
    Pexpire => "pexpire", -3, WRITE | FAST, (1, 1, 1), "generic", "2.6.0", expire::pexpire,
        "key milliseconds [NX|XX|GT|LT]", "Sets the expiry of a key in milliseconds from now.";
    Expireat => "expireat", -3, WRITE | FAST, (1, 1, 1), "generic", "1.2.0", expire::expireat,
        "key unix-time-seconds [NX|XX|GT|LT]", "Sets the expiry of a key as a Unix time in seconds.";
    Pexpireat => "pexpireat", -3, WRITE | FAST, (1, 1, 1), "generic", "2.6.0", expire::pexpireat,
        "key unix-time-milliseconds [NX|XX|GT|LT]", "Sets the expiry of a key as a Unix time in milliseconds.";
    Ttl => "ttl", 2, READONLY | FAST, (1, 1, 1), "generic", "1.0.0", expire::ttl,
        "key", "Returns the seconds a key has left (-1: no expiry, -2: no key).";
    Pttl => "pttl", 2, READONLY | FAST, (1, 1, 1), "generic", "2.6.0", expire::pttl,
        "key", "Returns the milliseconds a key has left (-1: no expiry, -2: no key).";
    Expiretime => "expiretime", 2, READONLY | FAST, (1, 1, 1), "generic", "7.0.0", expire::expiretime,
        "key", "Returns when a key expires, as a Unix time in seconds.";
    Pexpiretime => "pexpiretime", 2, READONLY | FAST, (1, 1, 1), "generic", "7.0.0", expire::pexpiretime,
        "key", "Returns when a key expires, as a Unix time in milliseconds.";
    Persist => "persist", 2, WRITE | FAST, (1, 1, 1), "generic", "2.2.0", expire::persist,
        "key", "Removes the expiry of a key.";

    // The server.
    Dbsize => "dbsize", 1, READONLY | FAST, (0, 0, 0), "server", "1.0.0", server::dbsize,
        "", "Returns the number of keys.";
    Flushdb => "flushdb", -1, WRITE | DANGEROUS, (0, 0, 0), "server", "1.0.0", server::flushdb,
        "[ASYNC|SYNC]", "Deletes every key.";
    Flushall => "flushall", -1, WRITE | DANGEROUS, (0, 0, 0), "server", "1.0.0", server::flushdb,
        "[ASYNC|SYNC]", "Deletes every key (there is one database).";
    Time => "time", 1, LOADING | STALE | FAST, (0, 0, 0), "server", "2.6.0", server::time,
        "", "Returns the server's time: Unix seconds and microseconds.";
    Info => "info", -1, LOADING | STALE | DANGEROUS, (0, 0, 0), "server", "1.0.0", info::info,
        "[section...]", "Returns information about the server, in sections.";
    Config => "config", -2, CONTAINER, (0, 0, 0), "server", "2.0.0", server::container,
        "", "A container for the configuration commands.";
    ConfigGet => "config|get", -3, LOADING | STALE | DANGEROUS, (0, 0, 0), "server", "2.0.0", config::get,
        "parameter...", "Returns the values of the settings matching the patterns.";
    ConfigSet => "config|set", -4, LOADING | STALE | DANGEROUS, (0, 0, 0), "server", "2.0.0", config::set,
        "parameter value...", "Changes settings that can change while the server runs.";
    ConfigResetstat => "config|resetstat", 2, LOADING | STALE | DANGEROUS, (0, 0, 0), "server", "2.0.0",
        config::resetstat, "", "Resets the statistics INFO reports.";
    ConfigHelp => "config|help", 2, LOADING | STALE, (0, 0, 0), "server", "5.0.0", config::help,
        "", "Lists the CONFIG subcommands.";
    Command => "command", -1, LOADING | STALE | CONTAINER, (0, 0, 0), "server", "2.8.13", command::command,
        "", "Returns information about every command.";
    CommandCount => "command|count", 2, LOADING | STALE, (0, 0, 0), "server", "2.8.13", command::count,
        "", "Returns the number of commands.";
    CommandDocs => "command|docs", -2, LOADING | STALE, (0, 0, 0), "server", "7.0.0", command::docs,
        "[command-name...]", "Returns the documentation of commands.";
    CommandInfo => "command|info", -2, LOADING | STALE, (0, 0, 0), "server", "2.8.13", command::info,
        "[command-name...]", "Returns information about commands.";
    CommandList => "command|list", -2, LOADING | STALE, (0, 0, 0), "server", "7.0.0", command::list,
        "[FILTERBY <MODULE module-name|ACLCAT category|PATTERN pattern>]", "Returns the names of the commands.";
    CommandGetkeys => "command|getkeys", -3, LOADING | STALE, (0, 0, 0), "server", "2.8.13",
        command::getkeys, "command [arg...]", "Returns the keys a command would use.";
    CommandHelp => "command|help", 2, LOADING | STALE, (0, 0, 0), "server", "5.0.0", command::help,
        "", "Lists the COMMAND subcommands.";

    // The connection.
    Ping => "ping", -1, FAST, (0, 0, 0), "connection", "1.0.0", connection::ping,
        "[message]", "Answers PONG, or the message.";
    Echo => "echo", 2, FAST, (0, 0, 0), "connection", "1.0.0", connection::echo,
        "message", "Answers the message.";
    Hello => "hello", -1, NO_AUTH | LOADING | STALE | FAST | CONN, (0, 0, 0), "connection", "6.0.0",
        connection::hello, "[protover [AUTH username password] [SETNAME clientname]]",
        "Chooses the protocol version, authenticates and names the connection.";
    Auth => "auth", -2, NO_AUTH | LOADING | STALE | FAST | CONN, (0, 0, 0), "connection", "1.0.0",
        connection::auth, "[username] password", "Authenticates the connection.";
    Select => "select", 2, LOADING | STALE | FAST | CONN, (0, 0, 0), "connection", "1.0.0",
        connection::select, "index", "Selects a database: only database 0 exists.";
    Quit => "quit", -1, NO_AUTH | LOADING | STALE | FAST | CONN, (0, 0, 0), "connection", "1.0.0",
        connection::quit, "", "Closes the connection.";
    Reset => "reset", 1, NO_AUTH | LOADING | STALE | FAST | CONN, (0, 0, 0), "connection", "6.2.0",
        connection::reset, "", "Resets the connection: protocol, name, authentication.";
    Client => "client", -2, CONTAINER, (0, 0, 0), "connection", "2.4.0", server::container,
        "", "A container for the connection commands.";
    ClientSetname => "client|setname", 3, LOADING | STALE | CONN, (0, 0, 0), "connection", "2.6.9",
        client::setname, "connection-name", "Names the connection.";
    ClientGetname => "client|getname", 2, LOADING | STALE | CONN, (0, 0, 0), "connection", "2.6.9",
        client::getname, "", "Returns the name of the connection.";
    ClientId => "client|id", 2, LOADING | STALE | CONN, (0, 0, 0), "connection", "5.0.0",
        client::id, "", "Returns the id of the connection.";
    ClientSetinfo => "client|setinfo", 4, LOADING | STALE | CONN, (0, 0, 0), "connection", "7.2.0",
        client::setinfo, "<LIB-NAME libname|LIB-VER libver>", "Records the client library's name or version.";
    ClientInfo => "client|info", 2, LOADING | STALE | CONN, (0, 0, 0), "connection", "6.2.0",
        client::info, "", "Describes the connection.";
    ClientList => "client|list", -2, LOADING | STALE | DANGEROUS | CONN, (0, 0, 0), "connection", "2.4.0",
        client::list, "[TYPE <NORMAL|MASTER|REPLICA|PUBSUB>] [ID client-id...]", "Describes the connections.";
    ClientHelp => "client|help", 2, LOADING | STALE | CONN, (0, 0, 0), "connection", "5.0.0",
        client::help, "", "Lists the CLIENT subcommands.";
}

static BY_NAME: LazyLock<HashMap<&'static str, &'static Spec>> =
    LazyLock::new(|| COMMANDS.iter().map(|spec| (spec.name, spec)).collect());

pub fn find(name: &[u8]) -> Option<&'static Spec> {
    let mut lower = [0u8; 32];
    let buf = lower.get_mut(..name.len())?;
    for (to, from) in buf.iter_mut().zip(name) {
        *to = from.to_ascii_lowercase();
    }
    BY_NAME.get(std::str::from_utf8(buf).ok()?).copied()
}

pub fn lookup(args: &[Bytes]) -> std::result::Result<&'static Spec, Error> {
    let name = args.first().map_or(&b""[..], |a| &a[..]);
    let Some(spec) = find(name) else {
        return Err(Error::unknown_command(args));
    };
    let spec = match args.get(1) {
        Some(sub) if spec.has(CONTAINER) => {
            let mut full = Vec::with_capacity(spec.name.len() + 1 + sub.len());
            full.extend_from_slice(spec.name.as_bytes());
            full.push(b'|');
            full.extend_from_slice(sub);
            find(&full).ok_or_else(|| Error::unknown_subcommand(name, sub))?
        }
        _ => spec,
    };
    let argc = i64::try_from(args.len()).unwrap_or(i64::MAX);
    let arity = i64::from(spec.arity);
    if (arity > 0 && argc != arity) || argc < -arity {
        return Err(Error::wrong_args(spec.name));
    }
    Ok(spec)
}

pub async fn execute(spec: &Spec, ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match run(spec, ctx, args).await {
        Ok(reply) => reply,
        Err(e) => e.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(list: &[&str]) -> Vec<Bytes> {
        list.iter()
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect()
    }

    fn err(list: &[&str]) -> String {
        lookup(&words(list)).map(|s| s.name).unwrap_err().0
    }

    #[test]
    fn names_are_found_in_any_case() {
        assert_eq!(lookup(&words(&["TtL", "k"])).unwrap().name, "ttl");
        assert_eq!(
            lookup(&words(&["client", "SETNAME", "x"])).unwrap().name,
            "client|setname"
        );
        assert!(find(&[b'a'; 40]).is_none());
    }

    #[test]
    fn unknown_names_and_wrong_arities_are_redis_errors() {
        assert_eq!(
            err(&["FOO", "a", "b"]),
            "ERR unknown command 'FOO', with args beginning with: 'a' 'b' "
        );
        assert_eq!(
            err(&["FOO"]),
            "ERR unknown command 'FOO', with args beginning with: "
        );
        assert_eq!(
            err(&["client", "nope"]),
            "ERR unknown subcommand 'nope'. Try CLIENT HELP."
        );
        assert_eq!(
            err(&["TTL"]),
            "ERR wrong number of arguments for 'ttl' command"
        );
        assert_eq!(
            err(&["ttl", "a", "b"]),
            "ERR wrong number of arguments for 'ttl' command"
        );
        assert_eq!(
            err(&["client"]),
            "ERR wrong number of arguments for 'client' command"
        );
        assert_eq!(
            err(&["client", "setname"]),
            "ERR wrong number of arguments for 'client|setname' command"
        );
        assert_eq!(
            err(&["expire", "k"]),
            "ERR wrong number of arguments for 'expire' command"
        );
    }

    #[test]
    fn every_line_is_well_formed() {
        let mut seen = std::collections::HashSet::new();
        for spec in COMMANDS {
            assert!(seen.insert(spec.name), "{} twice", spec.name);
            assert_eq!(spec.name, spec.name.to_ascii_lowercase());
            assert!(spec.name.len() <= 32, "{}", spec.name);
            assert!(spec.arity != 0, "{}", spec.name);
            assert!(!(spec.has(WRITE) && spec.has(READONLY)), "{}", spec.name);
            if let Some((parent, _)) = spec.name.split_once('|') {
                let parent = find(parent.as_bytes()).expect("a parent line");
                assert!(parent.has(CONTAINER), "{}", spec.name);
            }
            assert!(
                docs::arguments(spec.syntax).is_ok(),
                "{}: {}",
                spec.name,
                spec.syntax
            );
        }
    }
}
