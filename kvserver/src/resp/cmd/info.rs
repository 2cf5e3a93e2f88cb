//! `INFO [section...]`: the server described in Redis's `field:value` lines.
//!
//! The sections are those Redis tools read: `server`, `clients`, `memory`,
//! `persistence`, `stats`, `replication`, `cluster` and `keyspace`, all of them by
//! default (`all` and `everything` too); an unknown section is empty, as in Redis.
//! Figures kvserver does not keep are left out rather than made up: `used_memory`
//! is the process's resident size, and `db0`'s `expires` and `avg_ttl` are 0
//! (the store does not count keys with a TTL).

use std::fmt::Write;

use bytes::Bytes;

use super::connection::REDIS_VERSION;
use super::{Ctx, Result};
use crate::resp::frame::Reply;

const SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cluster",
    "keyspace",
];

/// `INFO [section...]`.
pub async fn info(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Result {
    let wanted: Vec<String> = args[1..]
        .iter()
        .map(|a| String::from_utf8_lossy(a).to_ascii_lowercase())
        .collect();
    let all = wanted.is_empty()
        || wanted
            .iter()
            .any(|w| w == "all" || w == "everything" || w == "default");
    let keys = ctx.state.backend().len().await?;
    let mut text = String::new();
    for &section in SECTIONS {
        if !all && !wanted.iter().any(|w| w == section) {
            continue;
        }
        if !text.is_empty() {
            text.push_str("\r\n");
        }
        section_text(ctx, section, keys, &mut text);
    }
    Ok(Reply::Verbatim(Bytes::from(text)))
}

fn section_text(ctx: &Ctx<'_>, section: &str, keys: usize, out: &mut String) {
    let state = ctx.state;
    let server = ctx.server;
    let mut line = |name: &str, value: &dyn std::fmt::Display| {
        // A header is a line of its own.
        if name.starts_with('#') {
            let _ = write!(out, "{name}\r\n");
        } else {
            let _ = write!(out, "{name}:{value}\r\n");
        }
    };
    match section {
        "server" => {
            line("# Server", &"");
            let uptime = state.uptime().as_secs();
            line("redis_version", &REDIS_VERSION);
            line("kvserver_version", &env!("CARGO_PKG_VERSION"));
            line("redis_mode", &"standalone");
            line(
                "os",
                &format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
            );
            line("arch_bits", &(usize::BITS));
            line("process_id", &std::process::id());
            line("tcp_port", &server.addr.port());
            line("uptime_in_seconds", &uptime);
            line("uptime_in_days", &(uptime / 86_400));
        }
        "clients" => {
            line("# Clients", &"");
            line("connected_clients", &server.clients.len());
            line("maxclients", &server.max_clients());
            line("blocked_clients", &0);
        }
        "memory" => {
            line("# Memory", &"");
            let rss = resident_bytes();
            line("used_memory", &rss);
            line("used_memory_human", &human(rss));
            line("used_memory_rss", &rss);
            let mode = state.backend().mode();
            let max = mode.max_weight.unwrap_or(0);
            line("maxmemory", &max);
            line("maxmemory_human", &human(max));
            let bounded = mode.capacity.is_some() || mode.max_weight.is_some();
            line(
                "maxmemory_policy",
                &if bounded { "allkeys-lru" } else { "noeviction" },
            );
        }
        "persistence" => {
            line("# Persistence", &"");
            let persistence = state.persistence();
            line("loading", &0);
            line("aof_enabled", &u8::from(persistence.is_some()));
            if let Some(p) = persistence {
                let status = if p.journal.failed { "err" } else { "ok" };
                line("aof_last_write_status", &status);
                line("aof_current_size", &p.journal.bytes);
            }
        }
        "stats" => {
            line("# Stats", &"");
            let counters = &server.counters;
            let load =
                |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
            let stats = state.backend().stats();
            line(
                "total_connections_received",
                &load(&counters.connections_received),
            );
            line(
                "total_commands_processed",
                &load(&counters.commands_processed),
            );
            line(
                "rejected_connections",
                &load(&counters.rejected_connections),
            );
            line("expired_keys", &stats.expirations);
            line("evicted_keys", &stats.evictions);
            line("keyspace_hits", &stats.hits);
            line("keyspace_misses", &stats.misses);
        }
        "replication" => {
            line("# Replication", &"");
            line("role", &"master");
            line("connected_slaves", &0);
        }
        "cluster" => {
            line("# Cluster", &"");
            line("cluster_enabled", &0);
        }
        _ => {
            line("# Keyspace", &"");
            if keys > 0 {
                line("db0", &format!("keys={keys},expires=0,avg_ttl=0"));
            }
        }
    }
}

/// The process's resident memory in bytes (Linux; 0 elsewhere).
fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// Bytes as Redis's `*_human` fields show them (`1.50M`).
fn human(bytes: u64) -> String {
    let units = ["B", "K", "M", "G", "T"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < units.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else {
        format!("{value:.2}{}", units[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::human;

    #[test]
    fn human_sizes() {
        assert_eq!(human(0), "0B");
        assert_eq!(human(1023), "1023B");
        assert_eq!(human(1536), "1.50K");
        assert_eq!(human(5 << 20), "5.00M");
    }
}
