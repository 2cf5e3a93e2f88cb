//! The connection to Redis: one server (a connection manager over a multiplexed
//! connection) or a Redis Cluster (the `redis` crate's cluster client, which follows
//! `MOVED`/`ASK` redirects and failovers by itself).
//!
//! [`Con`] is a `ConnectionLike` either way, so commands and scripts that name their
//! keys are sent the same way and routed by their first key. What only a cluster has,
//! several masters, is reached through [`Con::masters`] and [`Con::on_slot`]: a
//! command sent to the master that serves a slot (over one Redis, that Redis).

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClientBuilder, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{Cmd, RedisFuture, RedisResult, Value};

use super::layout::{Layout, SLOTS};
use super::scripts::NodeScript;

/// The URL forms `--backend` takes.
pub const URL_FORMS: &str =
    "redis://[:PASSWORD@]HOST:PORT[/DB] or redis+cluster://[:PASSWORD@]HOST:PORT[,HOST:PORT...]";

/// A connection to one Redis or to a Redis Cluster; cheap to clone.
#[derive(Clone)]
pub(super) enum Con {
    /// One Redis.
    Single(ConnectionManager),
    /// A Redis Cluster.
    Cluster(ClusterConnection),
}

/// A master and the slots it serves, as `CLUSTER SLOTS` reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Master {
    /// Its lowest slot: names it in listing cursors, and routes commands to it.
    pub first_slot: u16,
    /// Its slot ranges, inclusive.
    pub ranges: Vec<(u16, u16)>,
}

impl Master {
    /// Every slot it serves.
    pub fn slots(&self) -> impl Iterator<Item = u16> + '_ {
        self.ranges.iter().flat_map(|&(a, b)| a..=b)
    }
}

impl Con {
    /// Opens (lazily: nothing is sent until the first request) the Redis or cluster
    /// `url` names. Returns the connection and the key layout it needs.
    pub fn open(url: &str, timeout: Duration) -> anyhow::Result<(Con, Layout)> {
        if let Some(rest) = url.strip_prefix("redis+cluster://") {
            let nodes = cluster_nodes(rest).map_err(|e| {
                anyhow::anyhow!(
                    "--backend {}: {e}; give it as {URL_FORMS}",
                    super::redact(url)
                )
            })?;
            let client = ClusterClientBuilder::new(nodes)
                .connection_timeout(timeout)
                .response_timeout(timeout)
                // One retry follows a MOVED or ASK redirect, or a failover's new
                // master; more would outlast the request's timeout.
                .retries(1)
                .min_retry_wait(10)
                .max_retry_wait(100)
                .build()?;
            let config = ClusterConfig::new()
                .set_connection_timeout(timeout)
                .set_response_timeout(timeout);
            let con = client.get_pending_async_connection_with_config(config);
            return Ok((Con::Cluster(con), Layout::Cluster));
        }
        let client = redis::Client::open(url).map_err(|e| {
            anyhow::anyhow!(
                "--backend {}: {e}; give it as {URL_FORMS}",
                super::redact(url)
            )
        })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            // A failed connection is retried by the next request, not in a loop
            // that would outlast the request's timeout.
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let con = client.get_connection_manager_lazy(config)?;
        Ok((Con::Single(con), Layout::Single))
    }

    /// Whether this is a cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self, Con::Cluster(_))
    }

    /// Sends `cmd` to the master serving `slot` (over one Redis: to it).
    pub async fn on_slot(&mut self, slot: u16, cmd: Cmd) -> RedisResult<Value> {
        match self {
            Con::Single(con) => cmd.query_async(con).await,
            Con::Cluster(con) => {
                let route = Route::new(slot, SlotAddr::Master);
                // A routed command returns the node's error reply as a value.
                con.route_command(
                    cmd,
                    RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route)),
                )
                .await?
                .extract_error()
            }
        }
    }

    /// Runs `script` with no `KEYS` on the master serving `slot`, loading it there
    /// first if that master does not know it. Such a script may touch any keys of
    /// that master (Redis allows scripts without declared keys to); kvserver's only
    /// touch keys named by that master's own answers or slots.
    pub async fn script_on_slot(
        &mut self,
        slot: u16,
        script: &NodeScript,
        args: &[&[u8]],
    ) -> RedisResult<Value> {
        let mut eval = redis::cmd("EVALSHA");
        eval.arg(script.script.get_hash()).arg(0);
        for arg in args {
            eval.arg(*arg);
        }
        match self.on_slot(slot, eval.clone()).await {
            Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                let mut load = redis::cmd("SCRIPT");
                load.arg("LOAD").arg(script.source);
                self.on_slot(slot, load).await?;
                self.on_slot(slot, eval).await
            }
            other => other,
        }
    }

    /// The masters and their slots, in slot order; over one Redis, one master with
    /// every slot.
    pub async fn masters(&mut self) -> RedisResult<Vec<Master>> {
        let Con::Cluster(con) = self else {
            return Ok(vec![Master {
                first_slot: 0,
                ranges: vec![(0, SLOTS - 1)],
            }]);
        };
        let mut cmd = redis::cmd("CLUSTER");
        cmd.arg("SLOTS");
        let value = con
            .route_command(cmd, RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random))
            .await?
            .extract_error()?;
        parse_masters(value)
    }
}

/// Groups `CLUSTER SLOTS` ranges by master id (or address, for an id-less reply).
fn parse_masters(value: Value) -> RedisResult<Vec<Master>> {
    let bad =
        || redis::RedisError::from((redis::ErrorKind::Parse, "unexpected CLUSTER SLOTS reply"));
    let Value::Array(ranges) = value else {
        return Err(bad());
    };
    let mut masters: Vec<(String, Master)> = Vec::new();
    for range in ranges {
        let Value::Array(parts) = range else {
            return Err(bad());
        };
        let (Some(Value::Int(a)), Some(Value::Int(b)), Some(Value::Array(node))) =
            (parts.first(), parts.get(1), parts.get(2))
        else {
            return Err(bad());
        };
        let text = |v: &Value| match v {
            Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
            Value::SimpleString(s) => s.clone(),
            Value::Int(n) => n.to_string(),
            _ => String::new(),
        };
        let id = node.get(2).map(text).unwrap_or_else(|| {
            format!(
                "{}:{}",
                node.first().map(text).unwrap_or_default(),
                node.get(1).map(text).unwrap_or_default()
            )
        });
        let (a, b) = (
            u16::try_from(*a).map_err(|_| bad())?,
            u16::try_from(*b).map_err(|_| bad())?,
        );
        match masters.iter_mut().find(|(m, _)| *m == id) {
            Some((_, m)) => m.ranges.push((a, b)),
            None => masters.push((
                id,
                Master {
                    first_slot: a,
                    ranges: vec![(a, b)],
                },
            )),
        }
    }
    let mut masters: Vec<Master> = masters
        .into_iter()
        .map(|(_, mut m)| {
            m.ranges.sort_unstable();
            m.first_slot = m.ranges.first().map_or(0, |r| r.0);
            m
        })
        .collect();
    masters.sort_by_key(|m| m.first_slot);
    Ok(masters)
}

/// The node URLs of `HOST:PORT[,HOST:PORT...]` (after `redis+cluster://`), each with
/// the password given before the first one.
fn cluster_nodes(rest: &str) -> Result<Vec<String>, String> {
    let (auth, hosts) = match rest.rfind('@') {
        Some(at) => (&rest[..=at], &rest[at + 1..]),
        None => ("", rest),
    };
    let hosts = hosts.strip_suffix("/0").unwrap_or(hosts);
    if hosts.contains('/') {
        return Err("a Redis Cluster has only database 0: leave the /DB out".into());
    }
    let mut nodes = Vec::new();
    for host in hosts.split(',') {
        let (name, port) = host
            .rsplit_once(':')
            .ok_or_else(|| format!("{host:?} is not HOST:PORT"))?;
        if name.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(format!("{host:?} is not HOST:PORT"));
        }
        nodes.push(format!("redis://{auth}{host}"));
    }
    Ok(nodes)
}

impl ConnectionLike for Con {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Con::Single(con) => con.req_packed_command(cmd),
            Con::Cluster(con) => con.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Con::Single(con) => con.req_packed_commands(pipeline, offset, count),
            Con::Cluster(con) => con.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Con::Single(con) => con.get_db(),
            Con::Cluster(con) => con.get_db(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_urls_name_seed_nodes() {
        assert_eq!(
            cluster_nodes("127.0.0.1:7000,db2:7001").unwrap(),
            ["redis://127.0.0.1:7000", "redis://db2:7001"]
        );
        assert_eq!(
            cluster_nodes(":s3cret@a:1,b:2/0").unwrap(),
            ["redis://:s3cret@a:1", "redis://:s3cret@b:2"]
        );
        for bad in ["", "a", "a:", ":1", "a:x", "a:1/2", "a:1,,b:2", "a:0"] {
            assert!(cluster_nodes(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn masters_group_their_ranges() {
        let node = |id: &str| {
            Value::Array(vec![
                Value::BulkString(b"127.0.0.1".to_vec()),
                Value::Int(7000),
                Value::BulkString(id.as_bytes().to_vec()),
            ])
        };
        let range = |a, b, id| Value::Array(vec![Value::Int(a), Value::Int(b), node(id)]);
        let reply = Value::Array(vec![
            range(100, 200, "m2"),
            range(0, 99, "m1"),
            range(201, 16383, "m1"),
        ]);
        let masters = parse_masters(reply).unwrap();
        assert_eq!(
            masters,
            [
                Master {
                    first_slot: 0,
                    ranges: vec![(0, 99), (201, 16383)]
                },
                Master {
                    first_slot: 100,
                    ranges: vec![(100, 200)]
                },
            ]
        );
        assert_eq!(masters[1].slots().count(), 101);
        assert!(parse_masters(Value::Int(1)).is_err());
    }
}
