//! [`Config`]: every flag of `kvserver`, each with an environment variable fallback.
//!
//! Tests build one with `Config::parse_from(["kvserver", "--no-persist", ...])`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use kvcore::persist::Fsync;

/// An HTTP key-value service over kvcore.
///
/// Every flag can also be set through the environment variable shown, or in a `.env`
/// file in the working directory.
#[derive(Debug, Clone, Parser)]
#[command(name = "kvserver", version, about, max_term_width = 100)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "KV_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Default time-to-live in seconds for keys written without one (none by default).
    #[arg(long, env = "KV_TTL", value_parser = parse_ttl)]
    pub ttl: Option<Duration>,

    /// Reads restart a key's TTL at the length it was last written with.
    #[arg(long, env = "KV_SLIDING")]
    pub sliding: bool,

    /// At most this many keys; the least recently used are evicted. With --backend:
    /// the most entries the local cache holds [default there: 100000].
    #[arg(long, env = "KV_CAPACITY", value_parser = clap::value_parser!(u64).range(1..))]
    pub capacity: Option<u64>,

    /// At most this many bytes of keys and values (each entry counted with its
    /// overhead); the least recently used are evicted. Units as Redis's maxmemory:
    /// 100000, 64kb, 64mb, 1gb (powers of 1024), 64k, 64m, 1g (powers of 1000); 0 for
    /// no bound. With --backend: bounds the local cache.
    #[arg(long, env = "KV_MAX_MEMORY", value_name = "BYTES", value_parser = parse_memory)]
    pub max_memory: Option<u64>,

    /// Serve the `--load` dataset and refuse every write with 403.
    #[arg(long, env = "KV_READ_ONLY", requires = "load")]
    pub read_only: bool,

    /// A dataset to load at start: .json (one object), .jsonl ({"key","value"} lines)
    /// or .csv (key,value header).
    #[arg(long, env = "KV_LOAD")]
    pub load: Option<PathBuf>,

    /// Where data persists.
    #[arg(long, env = "KV_DATA_DIR", default_value = "./kvdata")]
    pub data_dir: PathBuf,

    /// Keep data in memory only.
    #[arg(long, env = "KV_NO_PERSIST")]
    pub no_persist: bool,

    /// Journal durability: always, everysec or no.
    #[arg(long, env = "KV_FSYNC", default_value = "everysec", value_parser = parse_fsync)]
    pub fsync: Fsync,

    /// Keep the data in Redis, with a local LRU cache in front:
    /// `redis://[:PASSWORD@]HOST:PORT[/DB]`, or a Redis Cluster:
    /// `redis+cluster://[:PASSWORD@]HOST:PORT[,HOST:PORT...]` (seed nodes).
    /// Nothing is written to --data-dir. Not with --read-only or --load.
    #[arg(long, env = "KV_BACKEND", value_name = "URL",
          conflicts_with_all = ["read_only", "load"])]
    pub backend: Option<String>,

    /// With --backend: seconds a local copy is trusted before Redis is asked again.
    #[arg(long, env = "KV_CACHE_TTL", default_value = "5", value_parser = parse_ttl)]
    pub cache_ttl: Duration,

    /// With --backend: seconds a Redis call may take before the request is answered
    /// 503 (a write already sent to Redis: 504 outcome_unknown).
    #[arg(long, env = "KV_BACKEND_TIMEOUT", default_value = "2", value_parser = parse_ttl)]
    pub backend_timeout: Duration,

    /// With --backend: a write is answered only once this many replicas of its Redis
    /// master have it (Redis WAIT, at most --backend-timeout; fewer: 504
    /// outcome_unknown). 0: answered once the master has it, which a failover right
    /// after can lose.
    #[arg(
        long,
        env = "KV_BACKEND_WAIT_REPLICAS",
        default_value_t = 0,
        value_name = "N"
    )]
    pub backend_wait_replicas: u32,

    /// Require `Authorization: Bearer TOKEN` on every route but /healthz and /readyz.
    #[arg(long, env = "KV_AUTH_TOKEN", hide_env_values = true)]
    pub auth_token: Option<String>,

    /// Longest key accepted, in bytes (longer: 413).
    #[arg(long, env = "KV_MAX_KEY_BYTES", default_value_t = 512,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_key_bytes: usize,

    /// Largest value accepted, in bytes as stored: compact JSON for an HTTP write
    /// (larger: 413).
    #[arg(long, env = "KV_MAX_VALUE_BYTES", default_value_t = 1 << 20,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_value_bytes: usize,

    /// Largest request body accepted, in bytes (larger: 413).
    #[arg(long, env = "KV_MAX_BODY_BYTES", default_value_t = 16 << 20,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_body_bytes: usize,

    /// Most pairs one `GET /keys` page returns.
    #[arg(long, env = "KV_LIST_LIMIT", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub list_limit: u64,

    /// Requests handled at once; more are answered 503 with Retry-After.
    #[arg(long, env = "KV_MAX_CONCURRENCY", default_value_t = 1024,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_concurrency: u64,

    /// Seconds a request may take before it is answered 503 (a write already started:
    /// 504 outcome_unknown).
    #[arg(long, env = "KV_REQUEST_TIMEOUT", default_value = "30", value_parser = parse_ttl)]
    pub request_timeout: Duration,

    /// Seconds a client has to send a request's headers, and that a keep-alive
    /// connection may sit idle between requests; then the connection is closed.
    #[arg(long, env = "KV_HEADER_TIMEOUT", default_value = "10", value_parser = parse_ttl)]
    pub header_timeout: Duration,

    /// Connections open at once; beyond, a new one replaces the one idle longest (or,
    /// all busy, waits in the listen backlog) [default: the open-file limit less 64
    /// kept for the store, at most 10000].
    #[arg(long, env = "KV_MAX_CONNECTIONS", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_connections: Option<u64>,

    /// Seconds a shutdown waits for requests in flight before it closes their
    /// connections.
    #[arg(long, env = "KV_SHUTDOWN_TIMEOUT", default_value = "10", value_parser = parse_ttl)]
    pub shutdown_timeout: Duration,

    /// Also serve the Redis protocol (RESP2, RESP3 after HELLO 3) on this address, so
    /// that redis-cli and Redis client libraries can use the store (off by default).
    #[arg(long, env = "KV_RESP_LISTEN", value_name = "ADDR", value_parser = parse_address)]
    pub resp_listen: Option<SocketAddr>,

    /// With --resp-listen: seconds a Redis-protocol connection may go without a
    /// complete command (or stay unable to take its replies) before it is closed; 0
    /// never closes one (`CONFIG SET timeout` changes it at run time).
    #[arg(long, env = "KV_RESP_IDLE_TIMEOUT", default_value = "300",
          value_parser = parse_idle_timeout)]
    pub resp_idle_timeout: Duration,

    /// With --resp-listen: most arguments one command may have (the command name
    /// included); a request announcing more closes its connection with a protocol
    /// error. A request's bytes are bounded by --max-body-bytes.
    #[arg(long, env = "KV_RESP_MAX_ARGS", default_value_t = 1 << 20,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=(i32::MAX as u64)))]
    pub resp_max_args: usize,

    /// Print the OpenAPI document of the HTTP API (JSON) and exit, without opening any
    /// data or binding the listen address.
    #[arg(long)]
    pub print_openapi: bool,

    /// Rules that make chosen file operations of the data directory fail: the seam
    /// through which tests fill the disk (never set from the command line).
    #[arg(skip)]
    pub faults: Option<kvcore::persist::Faults>,

    /// Most distinct paths whose hits `/api/...` counts; a hit on a new path beyond it
    /// is refused with 507 counters_full, while the paths already counted keep counting.
    #[arg(long, env = "KV_MAX_COUNTERS", default_value_t = 100_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_counters: u64,

    /// Seconds the outcome of a write sent with an `Idempotency-Key` header is kept: a
    /// retry with the same key within it gets the first outcome instead of applying
    /// twice.
    #[arg(long, env = "KV_IDEMPOTENCY_WINDOW", default_value = "86400", value_parser = parse_ttl)]
    pub idempotency_window: Duration,
}

/// Parses seconds (fractional allowed) from 0.001 to ten years: the range of every TTL
/// the flags and the HTTP API take (`docs/http-api.md`).
pub fn parse_ttl(text: &str) -> Result<Duration, String> {
    kvcore::ttl::parse_seconds(text).map_err(|e| e.to_string())
}

/// Parses a listen address, telling someone who gave only a port how to write one.
pub fn parse_address(text: &str) -> Result<SocketAddr, String> {
    text.trim().parse().map_err(|_| {
        if text.trim().parse::<u16>().is_ok() {
            format!(
                "{text:?} is a port without an address: write 127.0.0.1:{port} (this machine \
                 only) or 0.0.0.0:{port} (every interface)",
                port = text.trim()
            )
        } else {
            format!("{text:?} is not an address and port, such as 127.0.0.1:6379")
        }
    })
}

/// Parses an idle timeout: `0` (never) or seconds as [`parse_ttl`] takes them.
pub fn parse_idle_timeout(text: &str) -> Result<Duration, String> {
    if text.trim().parse::<f64>().is_ok_and(|s| s == 0.0) {
        return Ok(Duration::ZERO);
    }
    parse_ttl(text)
}

impl Config {
    /// The `--max-memory` bound in bytes, if there is one (`0` is none, as in Redis).
    pub fn max_memory_bytes(&self) -> Option<u64> {
        self.max_memory.filter(|&bytes| bytes > 0)
    }
}

/// Parses a size as Redis's `maxmemory` does: digits, then optionally a unit, in any
/// letter case: `k`, `m`, `g` (powers of 1000) or `kb`, `mb`, `gb` (powers of 1024).
pub fn parse_memory(text: &str) -> Result<u64, String> {
    let lower = text.trim().to_ascii_lowercase();
    let digits_end = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (digits, unit) = lower.split_at(digits_end);
    let unit_bytes: u64 = match unit {
        "" | "b" => 1,
        "k" => 1_000,
        "kb" => 1 << 10,
        "m" => 1_000_000,
        "mb" => 1 << 20,
        "g" => 1_000_000_000,
        "gb" => 1 << 30,
        _ => {
            return Err(format!(
                "{text:?} is not a size: give bytes, optionally with a unit \
                 (64kb, 64mb, 1gb are powers of 1024; 64k, 64m, 1g of 1000), or 0 for no bound"
            ));
        }
    };
    let n: u64 = digits.parse().map_err(|_| {
        format!("{text:?} is not a size: it must start with a whole number of bytes, as in 64mb")
    })?;
    n.checked_mul(unit_bytes)
        .ok_or_else(|| format!("{text:?} is too large"))
}

fn parse_fsync(text: &str) -> Result<Fsync, String> {
    text.parse().map_err(|e: kvcore::Error| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_bounds() {
        assert_eq!(parse_ttl("0.001"), Ok(Duration::from_millis(1)));
        assert_eq!(parse_ttl("300"), Ok(Duration::from_secs(300)));
        for bad in ["0", "0.0009", "-1", "315360000.5", "NaN", "inf", "x", ""] {
            assert!(parse_ttl(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_bare_port_is_told_how_to_write_an_address() {
        let e = Config::try_parse_from(["kvserver", "--resp-listen", "6379"]).unwrap_err();
        assert!(e.to_string().contains("write 127.0.0.1:6379"), "{e}");
        let c = Config::try_parse_from(["kvserver", "--resp-listen", "0.0.0.0:6379"]).unwrap();
        assert_eq!(c.resp_listen, Some("0.0.0.0:6379".parse().unwrap()));
        assert_eq!(
            Config::try_parse_from(["kvserver"]).unwrap().resp_listen,
            None
        );
    }

    #[test]
    fn read_only_requires_load() {
        assert!(Config::try_parse_from(["kvserver", "--read-only"]).is_err());
        let c = Config::try_parse_from(["kvserver", "--read-only", "--load", "d.csv"]).unwrap();
        assert!(c.read_only);
        assert_eq!(c.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(c.fsync, Fsync::EverySec);
    }

    #[test]
    fn counter_bound_and_idempotency_window() {
        let c = Config::try_parse_from(["kvserver"]).unwrap();
        assert_eq!(c.max_counters, 100_000);
        assert_eq!(c.idempotency_window, Duration::from_secs(86_400));
        let c = Config::try_parse_from([
            "kvserver",
            "--max-counters",
            "3",
            "--idempotency-window",
            "60",
        ])
        .unwrap();
        assert_eq!(c.max_counters, 3);
        assert_eq!(c.idempotency_window, Duration::from_secs(60));
        assert!(Config::try_parse_from(["kvserver", "--max-counters", "0"]).is_err());
        assert!(Config::try_parse_from(["kvserver", "--idempotency-window", "0"]).is_err());
    }

    #[test]
    fn replicas_a_write_waits_for() {
        let c = Config::try_parse_from(["kvserver"]).unwrap();
        assert_eq!(c.backend_wait_replicas, 0);
        let c = Config::try_parse_from(["kvserver", "--backend-wait-replicas", "2"]).unwrap();
        assert_eq!(c.backend_wait_replicas, 2);
        assert!(Config::try_parse_from(["kvserver", "--backend-wait-replicas", "-1"]).is_err());
    }

    #[test]
    fn max_memory_reads_sizes_as_redis_does() {
        for (text, bytes) in [
            ("100000", 100_000),
            ("64kb", 64 << 10),
            ("64KB", 64 << 10),
            ("64k", 64_000),
            ("64mb", 64 << 20),
            ("64Mb", 64 << 20),
            ("1gb", 1 << 30),
            ("1g", 1_000_000_000),
            ("2048b", 2048),
            ("0", 0),
            ("0mb", 0),
        ] {
            assert_eq!(parse_memory(text), Ok(bytes), "{text}");
        }
        for bad in [
            "",
            "mb",
            "-1",
            "1.5gb",
            "64 mb",
            "64tb",
            "x",
            "99999999999999gb",
        ] {
            assert!(parse_memory(bad).is_err(), "{bad:?} was accepted");
        }
        let c = Config::try_parse_from(["kvserver", "--max-memory", "64mb"]).unwrap();
        assert_eq!(c.max_memory_bytes(), Some(64 << 20));
        let c = Config::try_parse_from(["kvserver", "--max-memory", "0"]).unwrap();
        assert_eq!(c.max_memory_bytes(), None, "0 is no bound, as in Redis");
        assert_eq!(
            Config::try_parse_from(["kvserver"])
                .unwrap()
                .max_memory_bytes(),
            None
        );
        let e = Config::try_parse_from(["kvserver", "--max-memory", "lots"]).unwrap_err();
        assert!(e.to_string().contains("is not a size"), "{e}");
    }

    #[test]
    fn size_limits_are_at_least_one_byte() {
        for flag in ["--max-key-bytes", "--max-value-bytes", "--max-body-bytes"] {
            let e = Config::try_parse_from(["kvserver", flag, "0"])
                .err()
                .unwrap_or_else(|| panic!("{flag} 0 was accepted"));
            assert!(e.to_string().contains("0 is not in 1.."), "{flag}: {e}");
            assert!(
                Config::try_parse_from(["kvserver", flag, "1"]).is_ok(),
                "{flag}"
            );
        }
    }
}
