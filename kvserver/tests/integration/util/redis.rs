//! A `redis-server` of the test's own, on a free loopback port; and [`Redis`], what
//! a test asks of one Redis or of a Redis Cluster (`cluster.rs`), so that one test
//! body runs over both ([`over_redis_and_cluster!`]).
//!
//! Tests that need one start it with [`redis_or_skip!`]. On a machine without
//! `redis-server` the test prints one line on stderr saying it was skipped and why, and
//! returns (`cargo test` counts it as passed; the line shows beside it). Under `CI=true` or `KV_REQUIRE_REDIS=1` a missing `redis-server`
//! fails the test instead, so CI never skips one.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Starts a [`RedisServer`], or skips the calling test when there is none to start.
macro_rules! redis_or_skip {
    () => {
        match $crate::util::redis::RedisServer::start() {
            Some(r) => r,
            None => return,
        }
    };
}

/// Runs one test body over one Redis and over a Redis Cluster: a module named after
/// the test with two tests, `single` and `cluster`, each skipped visibly without
/// `redis-server` (see [`redis_or_skip!`]). The body gets `&dyn Redis`.
macro_rules! over_redis_and_cluster {
    ($(#[doc = $doc:literal])* async fn $name:ident($redis:ident) $body:block) => {
        $(#[doc = $doc])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[allow(unused_imports)]
            use $crate::util::redis::Redis as _;

            async fn run($redis: &dyn $crate::util::redis::Redis) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn single() {
                let redis = redis_or_skip!();
                run(&redis).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn cluster() {
                let cluster = cluster_or_skip!();
                run(&cluster).await
            }
        }
    };
}

/// What a test asks of the Redis behind kvserver: one server or a cluster.
pub trait Redis: Send + Sync {
    /// The URL for `--backend`.
    fn url(&self) -> String;

    /// Sends one command to the node that serves its key (the first argument after
    /// the command name); returns the reply's text, `None` if nobody answers. Bulk
    /// replies come back as their content, `$-1` as `(nil)`, integers as `:N`,
    /// arrays as their elements joined by newlines.
    fn command(&self, args: &[&str]) -> Option<String>;

    /// Keys in the whole keyspace (every master's `DBSIZE`).
    fn dbsize(&self) -> i64;

    /// Resets the command statistics of every master.
    fn reset_stats(&self);

    /// How many times Redis ran `EVALSHA` since [`Redis::reset_stats`], over every
    /// master.
    fn evalsha_calls(&self) -> u64;

    /// The hash kvserver keeps the sliding TTL length of `key` in.
    fn slide_hash(&self, key: &str) -> String;

    /// As [`Redis::command`], failing the test if nobody answers.
    fn cmd(&self, args: &[&str]) -> String {
        self.command(args)
            .unwrap_or_else(|| panic!("Redis did not answer {args:?}"))
    }

    /// An integer reply.
    fn int(&self, args: &[&str]) -> i64 {
        let reply = self.cmd(args);
        reply
            .strip_prefix(':')
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{args:?}: not an integer reply: {reply:?}"))
    }
}

/// A reference to a Redis is one (so that `Node::new(&redis)` takes a `&dyn Redis`).
impl<R: Redis + ?Sized> Redis for &R {
    fn url(&self) -> String {
        (**self).url()
    }
    fn command(&self, args: &[&str]) -> Option<String> {
        (**self).command(args)
    }
    fn dbsize(&self) -> i64 {
        (**self).dbsize()
    }
    fn reset_stats(&self) {
        (**self).reset_stats()
    }
    fn evalsha_calls(&self) -> u64 {
        (**self).evalsha_calls()
    }
    fn slide_hash(&self, key: &str) -> String {
        (**self).slide_hash(key)
    }
}

/// The name of a Redis tool (`redis-cli`) to run, or skips the calling test when the
/// tool is not installed, as [`redis_or_skip!`] does for `redis-server`.
macro_rules! redis_tool_or_skip {
    ($name:expr) => {
        match $crate::util::redis::tool($name, "redis-server") {
            Some(name) => name,
            None => return,
        }
    };
}

/// `name` when it runs (`name --version` succeeds); else says the test is skipped
/// (naming the Debian `package` that brings it) and returns `None`, or fails the test
/// under `CI=true` / `KV_REQUIRE_REDIS=1`.
pub fn tool(name: &'static str, package: &str) -> Option<&'static str> {
    if installed(name) {
        return Some(name);
    }
    let test = std::thread::current()
        .name()
        .unwrap_or("this test")
        .to_owned();
    assert!(
        !required(),
        "{test}: {name} is not installed, and CI or KV_REQUIRE_REDIS requires it \
         (apt-get install {package})"
    );
    // Straight to the file descriptor: the test harness captures `eprintln!`
    // and shows it only for failures, and a skip must be seen.
    let _ = writeln!(
        std::io::stderr(),
        "skipped {test}: {name} is not installed (apt-get install {package}; \
         KV_REQUIRE_REDIS=1 makes this a failure)"
    );
    None
}

/// Whether a missing `redis-server` must fail the test rather than skip it.
pub(super) fn required() -> bool {
    let set =
        |name: &str| std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0" && v != "false");
    set("CI") || set("KV_REQUIRE_REDIS")
}

/// Whether `program` (`redis-server`, `redis-cli`) can be run at all.
pub(super) fn installed(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether `programs` are there to run; when one is not, says so on stderr (the
/// test is skipped), or fails the test under CI, as [`tool`] does.
pub(super) fn available(programs: &[&'static str]) -> bool {
    programs
        .iter()
        .all(|program| tool(program, "redis-server").is_some())
}

/// A `redis-server` child process on a free loopback port, killed when dropped.
pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts one; returns `None`, after saying so, when `redis-server` is missing and
    /// not required.
    pub fn start() -> Option<RedisServer> {
        if !available(&["redis-server"]) {
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut server = RedisServer {
            child: None,
            port,
            dir: tempfile::tempdir().expect("a temp dir"),
        };
        server.run();
        Some(server)
    }

    /// Starts the process on this server's port and waits until it answers.
    pub fn run(&mut self) {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--loglevel", "warning"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start redis-server: {e}"));
        self.child = Some(child);
        let started = Instant::now();
        while command_at(self.port, &["PING"]).as_deref() != Some("+PONG") {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "redis-server did not answer on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends a signal (`STOP`, `CONT`) to the process.
    pub fn signal(&self, name: &str) {
        let pid = self.pid().expect("redis-server is running");
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(pid.to_string())
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Kills the process (the port stays this server's, for [`RedisServer::run`]).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // A stopped process is continued first, so that it is reaped at once.
            let _ = Command::new("kill")
                .arg("-CONT")
                .arg(child.id().to_string())
                .status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

impl Redis for RedisServer {
    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    fn command(&self, args: &[&str]) -> Option<String> {
        command_at(self.port, args)
    }

    fn dbsize(&self) -> i64 {
        self.int(&["DBSIZE"])
    }

    fn reset_stats(&self) {
        self.cmd(&["CONFIG", "RESETSTAT"]);
    }

    fn evalsha_calls(&self) -> u64 {
        evalsha_calls_at(self.port)
    }

    fn slide_hash(&self, _key: &str) -> String {
        "__kv__:ttl".into()
    }
}

/// Sends one command (RESP) to the Redis on `port`; see [`Redis::command`].
pub fn command_at(port: u16, args: &[&str]) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut out = format!("*{}\r\n", args.len());
    for a in args {
        out.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    stream.write_all(out.as_bytes()).ok()?;
    let mut reader = RespReader {
        stream,
        buf: Vec::new(),
    };
    reader.reply()
}

/// How many times the Redis on `port` ran `EVALSHA` since its last `CONFIG RESETSTAT`.
pub fn evalsha_calls_at(port: u16) -> u64 {
    let info = command_at(port, &["INFO", "commandstats"]).unwrap_or_default();
    info.lines()
        .find_map(|l| l.strip_prefix("cmdstat_evalsha:calls="))
        .and_then(|rest| rest.split(',').next()?.parse().ok())
        .unwrap_or(0)
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Just enough of RESP to read the replies the tests ask for.
struct RespReader {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl RespReader {
    fn line(&mut self) -> Option<String> {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                self.buf.drain(..end + 2);
                return Some(line);
            }
            self.fill()?;
        }
    }

    fn fill(&mut self) -> Option<()> {
        let mut chunk = [0u8; 4096];
        let n = self.stream.read(&mut chunk).ok()?;
        (n > 0).then(|| self.buf.extend_from_slice(&chunk[..n]))
    }

    fn reply(&mut self) -> Option<String> {
        let line = self.line()?;
        match line.as_bytes().first()? {
            b'$' => {
                let len: i64 = line[1..].parse().ok()?;
                if len < 0 {
                    return Some("(nil)".into());
                }
                let len = len as usize;
                while self.buf.len() < len + 2 {
                    self.fill()?;
                }
                let body = String::from_utf8_lossy(&self.buf[..len]).into_owned();
                self.buf.drain(..len + 2);
                Some(body)
            }
            b'*' => {
                let n: i64 = line[1..].parse().ok()?;
                let items: Option<Vec<String>> = (0..n.max(0)).map(|_| self.reply()).collect();
                Some(items?.join("\n"))
            }
            _ => Some(line),
        }
    }
}
