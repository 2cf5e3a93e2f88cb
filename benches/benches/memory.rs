// cargo bench -p kv-benches --bench memory
//! Memory per entry at a million entries: heap bytes a store holds beyond the raw key
//! and value bytes, for kvcore in each mode, moka, quick_cache, lru, dashmap and, when
//! `redis-server` is on the PATH, Redis (`used_memory` for the same keys and values).
//!
//! A counting global allocator tracks the heap: bytes requested, and bytes granted
//! (`malloc_usable_size`, which includes the allocator's size rounding, as Redis's
//! `used_memory` does). Prints a Markdown table.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use common::{Peer, Visitor};
use kv_benches::{Cache, Mode, TTL, Val, key, quick, raw_bytes};

/// Forwards to the system allocator and counts live bytes, requested and granted.
struct Counting;

static REQUESTED: AtomicUsize = AtomicUsize::new(0);
static GRANTED: AtomicUsize = AtomicUsize::new(0);

/// Bytes glibc granted for `ptr`, a live allocation of `System`.
///
/// # Safety
/// `ptr` must come from `System` and not yet be freed. `System` on Linux allocates
/// with `malloc`, `calloc`, `realloc` or `posix_memalign`, all of whose results
/// `malloc_usable_size` accepts.
unsafe fn granted(ptr: *mut u8) -> usize {
    // SAFETY: guaranteed by the caller, as documented above.
    unsafe { libc::malloc_usable_size(ptr.cast()) }
}

/// Counts `ptr`, a new allocation for `layout`, unless it is null; returns it.
///
/// # Safety
/// `ptr` must be null or have just been returned by `System` for `layout`.
unsafe fn counted(ptr: *mut u8, layout: Layout) -> *mut u8 {
    if !ptr.is_null() {
        REQUESTED.fetch_add(layout.size(), Relaxed);
        // SAFETY: `ptr` was just returned by `System`, as the caller guarantees.
        GRANTED.fetch_add(unsafe { granted(ptr) }, Relaxed);
    }
    ptr
}

// SAFETY: every method forwards its arguments unchanged to `System`, which upholds
// the `GlobalAlloc` contract, and returns `System`'s result unchanged. The
// bookkeeping around each call only updates atomics (it never allocates, so it cannot
// recurse) and calls `granted` on pointers `System` has just returned or that the
// caller passes as live, before they are freed.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `alloc`'s contract, which `System` has too; what
        // `System` returns is what `counted` needs.
        unsafe { counted(System.alloc(layout), layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as in `alloc`.
        unsafe { counted(System.alloc_zeroed(layout), layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        REQUESTED.fetch_sub(layout.size(), Relaxed);
        // SAFETY: the caller passes a live allocation of this allocator, i.e. of
        // `System`; it is measured before it is freed.
        GRANTED.fetch_sub(unsafe { granted(ptr) }, Relaxed);
        // SAFETY: the caller upholds `dealloc`'s contract.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` is live (the caller's contract); measured before it may move.
        let before = unsafe { granted(ptr) };
        // SAFETY: the caller upholds `realloc`'s contract.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            REQUESTED.fetch_add(new_size, Relaxed);
            REQUESTED.fetch_sub(layout.size(), Relaxed);
            GRANTED.fetch_sub(before, Relaxed);
            // SAFETY: `new` was just returned by `System`.
            GRANTED.fetch_add(unsafe { granted(new) }, Relaxed);
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> (usize, usize) {
    (REQUESTED.load(Relaxed), GRANTED.load(Relaxed))
}

/// Overhead per entry: (requested, granted) bytes beyond the raw keys and values.
struct Row {
    name: String,
    entries: usize,
    requested: f64,
    granted: f64,
}

struct Measure<'a> {
    keys: &'a [String],
    label: String,
    rows: Vec<Row>,
}

impl Visitor for Measure<'_> {
    fn visit<C: Cache>(&mut self, _peer: Peer, make: impl Fn() -> C) {
        let (req0, gra0) = live();
        let cache = make();
        for (i, k) in self.keys.iter().enumerate() {
            cache.set(k, Val::of(i as u64));
        }
        cache.settle();
        let (req1, gra1) = live();
        // A bounded peer may hold fewer keys than it was given; count what it holds.
        let present: Vec<usize> = (0..self.keys.len())
            .filter(|&i| cache.contains(&self.keys[i]))
            .collect();
        let entries = present.len();
        let raw: usize = present
            .iter()
            .map(|&i| self.keys[i].len() + size_of::<Val>())
            .sum();
        let per = |total: usize| (total as f64 - raw as f64) / entries as f64;
        self.rows.push(Row {
            name: self.label.clone(),
            entries,
            requested: per(req1 - req0),
            granted: per(gra1 - gra0),
        });
        drop(cache);
    }
}

/// A `redis-server` on a free loopback port, stopped on drop.
struct Redis {
    child: Child,
    conn: BufReader<TcpStream>,
}

impl Redis {
    fn start() -> Option<Redis> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .ok()?
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .ok()?;
        let mut redis = Redis {
            child,
            conn: BufReader::new(connect(port)?),
        };
        redis.command(&["FLUSHALL"]);
        Some(redis)
    }

    /// Sends one command and returns its reply's text (simple, bulk or integer).
    fn command(&mut self, args: &[&str]) -> String {
        let mut out = Vec::new();
        encode(&mut out, args);
        self.conn.get_mut().write_all(&out).unwrap();
        self.reply()
    }

    fn reply(&mut self) -> String {
        let mut line = String::new();
        self.conn.read_line(&mut line).unwrap();
        let line = line.trim_end();
        match line.as_bytes().first() {
            Some(b'$') => {
                let len: usize = line[1..].parse().unwrap();
                let mut body = vec![0; len + 2];
                self.conn.read_exact(&mut body).unwrap();
                body.truncate(len);
                String::from_utf8(body).unwrap()
            }
            Some(b'-') => panic!("redis error: {line}"),
            _ => line[1..].to_owned(),
        }
    }

    fn used_memory(&mut self) -> usize {
        let info = self.command(&["INFO", "memory"]);
        info.lines()
            .find_map(|l| l.strip_prefix("used_memory:"))
            .and_then(|v| v.trim().parse().ok())
            .expect("INFO memory reports used_memory")
    }

    fn version(&mut self) -> String {
        let info = self.command(&["INFO"]);
        let field = |name: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(name))
                .unwrap_or("?")
                .trim()
                .to_owned()
        };
        format!("{}, {}", field("redis_version:"), field("mem_allocator:"))
    }

    /// SETs every key, with `extra` arguments (`EX 3600`), pipelined in batches.
    fn load(&mut self, keys: &[String], extra: &[&str]) {
        for (b, chunk) in keys.chunks(10_000).enumerate() {
            let mut out = Vec::new();
            for (j, k) in chunk.iter().enumerate() {
                let v = Val::of((b * 10_000 + j) as u64);
                let mut args: Vec<&[u8]> = vec![b"SET", k.as_bytes(), &v.0];
                args.extend(extra.iter().map(|a| a.as_bytes()));
                encode(&mut out, &args);
            }
            self.conn.get_mut().write_all(&out).unwrap();
            for _ in chunk {
                assert_eq!(self.reply(), "OK");
            }
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn connect(port: u16) -> Option<TcpStream> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => return Some(s),
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => return None,
        }
    }
}

fn encode<A: AsRef<[u8]>>(out: &mut Vec<u8>, args: &[A]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        let a = a.as_ref();
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

fn main() {
    if std::env::args().any(|a| a == "--test") {
        return;
    }
    let n: usize = if quick() { 100_000 } else { 1_000_000 };
    let keys: Vec<String> = (0..n).map(key).collect();
    let raw = raw_bytes(n) as f64 / n as f64;
    let mut m = Measure {
        keys: &keys,
        label: String::new(),
        rows: Vec::new(),
    };
    for mode in Mode::ALL {
        // A clock changes no entry's size: one kvcore row per mode.
        let peers = Peer::ALL
            .into_iter()
            .filter(|&p| p != Peer::KvcoreTick && p != Peer::KvcoreListener);
        for peer in peers.filter(|p| p.supports(mode)) {
            m.label = format!("{} {}", peer.name(), mode.name());
            // Bounded modes hold half their key space: give them room for all `n`.
            let space = if mode.capacity(1).is_some() { 2 * n } else { n };
            common::visit(peer, mode, space, &mut m);
        }
    }
    let mut rows = m.rows;
    match Redis::start() {
        Some(mut redis) => {
            let version = redis.version();
            let ttl = TTL.as_secs().to_string();
            for (mode, extra) in [("plain", vec![]), ("ttl", vec!["EX", ttl.as_str()])] {
                redis.command(&["FLUSHALL"]);
                let before = redis.used_memory();
                redis.load(&keys, &extra);
                let entries: usize = redis.command(&["DBSIZE"]).parse().unwrap();
                let used = redis.used_memory() - before;
                rows.push(Row {
                    name: format!("Redis {mode} ({version})"),
                    entries,
                    requested: f64::NAN,
                    granted: used as f64 / entries as f64 - raw,
                });
            }
        }
        None => eprintln!("redis-server not found or did not start: Redis left out"),
    }
    println!("Memory per entry beyond the raw key and value ({raw:.1} bytes a pair on average)\n");
    println!("| store and mode | entries | bytes requested | bytes granted |");
    println!("|---|---|---|---|");
    for r in rows {
        let requested = if r.requested.is_nan() {
            "—".to_owned()
        } else {
            format!("{:.1}", r.requested)
        };
        println!(
            "| {} | {} | {} | {:.1} |",
            r.name, r.entries, requested, r.granted
        );
    }
}
