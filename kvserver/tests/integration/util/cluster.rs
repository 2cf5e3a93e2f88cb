//! A Redis Cluster of the test's own: three masters and three replicas of
//! `redis-server --cluster-enabled yes` on free loopback ports, formed with
//! `redis-cli --cluster create ... --cluster-replicas 1`, and killed (every node) when
//! dropped, also when the test panics.
//!
//! Tests start one with [`cluster_or_skip!`], skipped visibly without `redis-server`
//! or `redis-cli` like [`redis_or_skip!`]. The nodes sync replicas at once (`repl-diskless-sync-delay
//! 0`), let a replica take over however stale its copy (`cluster-replica-validity-factor
//! 0`), and call a master dead after one second without an answer
//! (`cluster-node-timeout 1000`), so a failover takes a few seconds.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use super::redis::{Redis, available, command_at, evalsha_calls_at};

/// Starts a [`RedisCluster`], or skips the calling test when `redis-server` is missing.
/// `cluster_or_skip!(shared)` joins the cluster that tests running now share (see
/// [`RedisCluster::shared`]).
macro_rules! cluster_or_skip {
    () => {
        match $crate::util::cluster::RedisCluster::start() {
            Some(c) => c,
            None => return,
        }
    };
    (shared) => {
        match $crate::util::cluster::RedisCluster::shared() {
            Some(c) => c,
            None => return,
        }
    };
}

/// Nodes of a test cluster: three masters, each with one replica.
const NODES: usize = 6;
/// The cluster bus listens on the port + 10 000: both must be free.
const BUS_OFFSET: u16 = 10_000;
/// The lowest port tried.
const LOWEST_PORT: u16 = 10_000;

/// One node: its port, and its process while it runs.
struct Node {
    port: u16,
    child: Option<Child>,
}

/// Six `redis-server` processes forming one cluster.
pub struct RedisCluster {
    nodes: Vec<Node>,
    _dir: tempfile::TempDir,
}

/// Ports to try next; each test process starts from its own place in the range, so
/// that concurrent test binaries rarely try the same ports.
static NEXT_PORT: AtomicU16 = AtomicU16::new(0);

/// A port that is free, with its bus port (+10 000) free too, both below the
/// kernel's ephemeral range, where the outgoing connections of the tests running
/// beside this one could take a port between this check and the node's bind.
fn free_port() -> u16 {
    let ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32_768);
    let highest = ephemeral
        .saturating_sub(BUS_OFFSET)
        .clamp(LOWEST_PORT + 100, u16::MAX - BUS_OFFSET);
    let span = highest - LOWEST_PORT;
    let _ = NEXT_PORT.compare_exchange(
        0,
        (std::process::id() % u32::from(span)) as u16,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    for _ in 0..span {
        let port = LOWEST_PORT + NEXT_PORT.fetch_add(1, Ordering::Relaxed) % span;
        let free = |p: u16| TcpListener::bind(("127.0.0.1", p)).is_ok();
        if free(port) && free(port + BUS_OFFSET) {
            return port;
        }
    }
    panic!("no free port pair between {LOWEST_PORT} and {highest}");
}

/// The cluster the tests running now share; gone (and its nodes killed) once the
/// last of them drops it.
static SHARED: Mutex<Weak<RedisCluster>> = Mutex::new(Weak::new());

impl RedisCluster {
    /// A cluster shared with the other tests that run at the same time and ask for
    /// one: started by the first, killed when the last is done (also when it panics).
    /// Its users keep to keys of their own (a prefix or hash tag of the test's) and
    /// never empty or count the whole keyspace.
    pub fn shared() -> Option<Arc<RedisCluster>> {
        let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(cluster) = shared.upgrade() {
            return Some(cluster);
        }
        let cluster = Arc::new(RedisCluster::start()?);
        *shared = Arc::downgrade(&cluster);
        Some(cluster)
    }

    /// Starts and forms a cluster, waiting until it is ok and every replica is in
    /// sync; `None`, after saying so, without `redis-server`.
    pub fn start() -> Option<RedisCluster> {
        if !available(&["redis-server", "redis-cli"]) {
            return None;
        }
        let dir = tempfile::tempdir().expect("a temp dir");
        let mut cluster = RedisCluster {
            nodes: Vec::new(),
            _dir: dir,
        };
        for _ in 0..NODES {
            let port = free_port();
            let child = cluster.spawn(port);
            cluster.nodes.push(Node {
                port,
                child: Some(child),
            });
        }
        for i in 0..NODES {
            cluster.wait_answers(i);
        }
        let addresses: Vec<String> = cluster
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let out = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run redis-cli: {e}"));
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        cluster.wait_healthy();
        Some(cluster)
    }

    /// Waits until node `i` answers `PING`. A node whose process exited (another
    /// program took its port or bus port first) starts again on another port.
    fn wait_answers(&mut self, i: usize) {
        for _ in 0..5 {
            let port = self.nodes[i].port;
            let mut exited = false;
            wait_for(&format!("node {port} answers"), || {
                if let Some(child) = self.nodes[i].child.as_mut() {
                    exited = matches!(child.try_wait(), Ok(Some(_)));
                }
                exited || command_at(port, &["PING"]).as_deref() == Some("+PONG")
            });
            if !exited {
                return;
            }
            let port = free_port();
            self.nodes[i] = Node {
                port,
                child: Some(self.spawn(port)),
            };
        }
        panic!("node {i} of the cluster exited five times at start");
    }

    /// Starts the node process on `port`, with its directory (and so its
    /// `nodes.conf`, its identity in the cluster) kept from an earlier run.
    fn spawn(&self, port: u16) -> Child {
        let node_dir = self._dir.path().join(port.to_string());
        std::fs::create_dir_all(&node_dir).expect("a node directory");
        Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--cluster-enabled", "yes", "--cluster-node-timeout", "1000"])
            .args(["--cluster-replica-validity-factor", "0"])
            .args(["--repl-diskless-sync-delay", "0"])
            .args(["--save", "", "--appendonly", "no", "--loglevel", "warning"])
            .arg("--dir")
            .arg(&node_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start redis-server: {e}"))
    }

    /// Starts again a node [`RedisCluster::kill`] killed: it rejoins the cluster, as
    /// a replica of the master that took its place.
    pub fn restart(&mut self, port: u16) {
        let i = self
            .nodes
            .iter()
            .position(|n| n.port == port && n.child.is_none())
            .unwrap_or_else(|| panic!("node {port} is not a stopped node of this cluster"));
        // Kept with its node, which kills and waits for it when dropped.
        self.nodes[i].child = Some(self.spawn(port));
    }

    /// Waits until every running node reports `cluster_state:ok`, agrees on three
    /// masters, and every replica's link to its master is up.
    pub fn wait_healthy(&self) {
        wait_for("the cluster to be ok", || {
            self.running().all(|port| {
                let info = command_at(port, &["CLUSTER", "INFO"]).unwrap_or_default();
                info.contains("cluster_state:ok")
                    && info.contains(&format!("cluster_size:{}", NODES / 2))
            }) && self.running().all(|port| {
                let info = command_at(port, &["INFO", "replication"]).unwrap_or_default();
                info.contains("role:master") || info.contains("master_link_status:up")
            }) && self.masters().len() == NODES / 2
        });
    }

    /// Ports of the nodes whose process runs.
    fn running(&self) -> impl Iterator<Item = u16> + '_ {
        self.nodes
            .iter()
            .filter(|n| n.child.is_some())
            .map(|n| n.port)
    }

    /// Ports of the running masters.
    pub fn masters(&self) -> Vec<u16> {
        self.running()
            .filter(|&port| command_at(port, &["ROLE"]).is_some_and(|r| r.starts_with("master")))
            .collect()
    }

    /// The port of the master serving `key` now.
    pub fn master_of(&self, key: &str) -> u16 {
        let slot = self.int(&["CLUSTER", "KEYSLOT", key]);
        let port = self.running().next().expect("a running node");
        let slots = command_at(port, &["CLUSTER", "SLOTS"]).expect("CLUSTER SLOTS");
        // Each range reads as: first, last, master host, master port, id, replicas...
        let lines: Vec<&str> = slots.lines().collect();
        let mut i = 0;
        while i + 3 < lines.len() {
            let (a, b) = (
                lines[i].trim_start_matches(':'),
                lines[i + 1].trim_start_matches(':'),
            );
            if let (Ok(a), Ok(b)) = (a.parse::<i64>(), b.parse::<i64>())
                && (a..=b).contains(&slot)
                && let Ok(port) = lines[i + 3].trim_start_matches(':').parse()
            {
                return port;
            }
            i += 1;
        }
        panic!("no master serves slot {slot}: {slots:?}");
    }

    /// Kills (`kill -9`) the node on `port`.
    pub fn kill(&mut self, port: u16) {
        let node = self
            .nodes
            .iter_mut()
            .find(|n| n.port == port)
            .expect("a node of this cluster");
        if let Some(mut child) = node.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The node URL list for `--backend`, with only some of the nodes as seeds.
    pub fn url_with_seeds(&self, seeds: usize) -> String {
        let hosts: Vec<String> = self
            .nodes
            .iter()
            .take(seeds)
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        format!("redis+cluster://{}", hosts.join(","))
    }

    /// Sends `args` to the running node on `port`, then follows `MOVED` replies.
    fn routed(&self, port: u16, args: &[&str]) -> Option<String> {
        let mut port = port;
        for _ in 0..5 {
            let reply = command_at(port, args)?;
            match reply.strip_prefix("-MOVED ") {
                Some(to) => {
                    port = to.rsplit(':').next()?.trim().parse().ok()?;
                }
                None => return Some(reply),
            }
        }
        None
    }
}

/// Polls `done` every 20 ms for up to 30 s.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "waited 30 s for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Redis for RedisCluster {
    fn url(&self) -> String {
        self.url_with_seeds(NODES)
    }

    fn command(&self, args: &[&str]) -> Option<String> {
        self.routed(self.running().next()?, args)
    }

    fn dbsize(&self) -> i64 {
        self.masters()
            .into_iter()
            .map(|port| {
                command_at(port, &["DBSIZE"])
                    .and_then(|r| r.strip_prefix(':')?.parse::<i64>().ok())
                    .expect("DBSIZE")
            })
            .sum()
    }

    fn reset_stats(&self) {
        for port in self.running().collect::<Vec<_>>() {
            command_at(port, &["CONFIG", "RESETSTAT"]);
        }
    }

    fn evalsha_calls(&self) -> u64 {
        self.running().map(evalsha_calls_at).sum()
    }

    fn slide_hash(&self, key: &str) -> String {
        let tag = kvserver::backend::slot_tag(kvserver::backend::hash_slot(key));
        format!("__kv__:{{{tag}}}:ttl")
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}
