//! What only a Redis Cluster needs: keys grouped by hash slot, the refusal of an
//! all-or-nothing write across slots, and the operations over every master (key
//! count, `DELETE /keys`, readiness).

use futures_util::future::try_join_all;

use super::conn::Master;
use super::layout::{self, SLOTS};
use super::scripts::NodeScript;
use super::*;

impl RedisCache {
    /// The indices of `keys` in batches that one script may touch together: over a
    /// cluster, one batch per hash slot (in order of first appearance); over one
    /// Redis, all of them. No batch is empty.
    pub(super) fn by_slot(&self, keys: &[&str]) -> Vec<Vec<usize>> {
        if keys.is_empty() {
            return Vec::new();
        }
        if !self.con.is_cluster() {
            return vec![(0..keys.len()).collect()];
        }
        let mut groups: Vec<(u16, Vec<usize>)> = Vec::new();
        let mut at: HashMap<u16, usize> = HashMap::new();
        for (i, key) in keys.iter().enumerate() {
            let s = layout::slot(key);
            match at.get(&s) {
                Some(&g) => groups[g].1.push(i),
                None => {
                    at.insert(s, groups.len());
                    groups.push((s, vec![i]));
                }
            }
        }
        groups.into_iter().map(|(_, g)| g).collect()
    }

    /// Refuses, before anything is written, an all-or-nothing write whose keys are in
    /// several hash slots of a cluster, where Redis cannot make it atomic.
    /// A reserved key is refused first, as over one Redis.
    pub(super) fn one_slot(&self, items: &[(String, Bytes)]) -> Result<()> {
        for (key, _) in items {
            refuse_reserved(key)?;
        }
        if !self.con.is_cluster() {
            return Ok(());
        }
        let Some((first, _)) = items.first() else {
            return Ok(());
        };
        let slot = layout::slot(first);
        if let Some((other, _)) = items.iter().find(|(k, _)| layout::slot(k) != slot) {
            let slots: HashSet<u16> = items.iter().map(|(k, _)| layout::slot(k)).collect();
            return Err(ApiError::cross_slot(first, other, slots.len()));
        }
        Ok(())
    }

    /// The masters of the cluster (over one Redis, the one), within the timeout.
    pub(super) async fn masters(&self) -> Result<Vec<Master>> {
        let mut con = self.con.clone();
        if !con.is_cluster() {
            // One Redis: nothing to ask.
            return con
                .masters()
                .await
                .map_err(|e| self.failure(&e, Op::Read(&[])));
        }
        let masters = self.call(async move { con.masters().await }).await?;
        if masters.is_empty() {
            return Err(ApiError::unavailable(
                "the Redis Cluster reports no master serving slots; retry shortly",
                1,
            ));
        }
        Ok(masters)
    }

    /// The arguments of `cluster_len.lua` and `cluster_clear.lua` for `master`: the
    /// hit counters' key if it serves that slot, then the tag of each of its slots.
    fn own_keys_args(master: &Master) -> Vec<&'static str> {
        let hits_slot = layout::slot(HITS_KEY);
        let mut args = Vec::with_capacity(1 + usize::from(SLOTS) / 3);
        let serves_hits = master.slots().any(|s| s == hits_slot);
        args.push(if serves_hits { HITS_KEY } else { "" });
        args.extend(master.slots().map(layout::slot_tag));
        args
    }

    /// Runs a per-master script on every master at once; returns the sum of their
    /// integer answers.
    async fn on_every_master(&self, script: &NodeScript, op: Op<'_>) -> Result<usize> {
        let masters = self.masters().await?;
        let mut calls = Vec::with_capacity(masters.len());
        for master in &masters {
            calls.push(self.on_master(master, script, op));
        }
        let counts = try_join_all(calls).await?;
        Ok(counts
            .into_iter()
            .map(|n| n.max(0).unsigned_abs() as usize)
            .sum())
    }

    /// Runs a per-master script on `master`; returns its integer answer.
    async fn on_master(&self, master: &Master, script: &NodeScript, op: Op<'_>) -> Result<i64> {
        let args = Self::own_keys_args(master);
        let bytes: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        let mut con = self.con.clone();
        self.call_as(op, async move {
            let value = con
                .script_on_slot(master.first_slot, script, &bytes)
                .await?;
            redis::from_redis_value::<i64>(value).map_err(RedisError::from)
        })
        .await
    }

    /// Keys in every master, less kvserver's own.
    pub(super) async fn cluster_len(&self) -> Result<usize> {
        self.on_every_master(&self.scripts.cluster_len, Op::Read(&[]))
            .await
    }

    /// Empties every master but for the hit counters and idempotency outcomes;
    /// returns how many keys there were. Each master is emptied atomically, the
    /// masters one after another.
    pub(super) async fn cluster_clear(&self) -> Result<usize> {
        let n = self
            .on_every_master(&self.scripts.cluster_clear, Op::Write)
            .await?;
        if self.wait_replicas > 0 {
            for master in self.masters().await? {
                self.replicated(master.first_slot, self.timeout).await?;
            }
        }
        Ok(n)
    }

    /// Ready when every master answers and reports `cluster_state:ok`.
    pub(super) async fn cluster_ready(&self) -> Result<()> {
        let masters = self.masters().await?;
        let mut checks = Vec::with_capacity(masters.len());
        for master in &masters {
            checks.push(self.master_ready(master.first_slot));
        }
        try_join_all(checks).await?;
        Ok(())
    }

    /// Ready when the master of `slot` answers and reports `cluster_state:ok`.
    async fn master_ready(&self, slot: u16) -> Result<()> {
        let mut con = self.con.clone();
        let text: String = self
            .call(async move {
                let mut info = redis::cmd("CLUSTER");
                info.arg("INFO");
                let value = con.on_slot(slot, info).await?;
                redis::from_redis_value::<String>(value).map_err(RedisError::from)
            })
            .await?;
        let state = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("cluster_state:"))
            .unwrap_or("unknown")
            .to_owned();
        if state != "ok" {
            return Err(ApiError::unavailable(
                format!(
                    "the Redis Cluster is not ready (cluster_state:{state} on the master of \
                     slot {slot}); retry shortly"
                ),
                1,
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cache over a cluster that is never reached: these tests send nothing.
    fn over(url: &str) -> RedisCache {
        RedisCache::new(RedisOptions {
            url: url.into(),
            cache_ttl: Duration::from_secs(5),
            capacity: None,
            timeout: Duration::from_secs(1),
            default_ttl: None,
            sliding: false,
            clock: Arc::new(kvcore::SystemClock),
            max_value_bytes: 1024,
            max_counters: 10,
            idempotency_window: Duration::from_secs(60),
            wait_replicas: 0,
            max_memory: None,
        })
        .expect("a cache")
    }

    fn items(keys: &[&str]) -> Vec<(String, Bytes)> {
        keys.iter()
            .map(|k| ((*k).to_owned(), Bytes::from("v")))
            .collect()
    }

    #[tokio::test]
    async fn keys_go_in_batches_of_one_slot_over_a_cluster_only() {
        let keys = ["a", "{a}x", "b", "{b}y", "a{}", "{a}z"];
        let cluster = over("redis+cluster://127.0.0.1:1");
        assert_eq!(cluster.by_slot(&keys), [vec![0, 1, 5], vec![2, 3], vec![4]]);
        assert!(cluster.by_slot(&[]).is_empty());
        let single = over("redis://127.0.0.1:1/0");
        assert_eq!(single.by_slot(&keys), [vec![0, 1, 2, 3, 4, 5]]);
    }

    #[tokio::test]
    async fn all_or_nothing_writes_must_share_a_slot_over_a_cluster() {
        let cluster = over("redis+cluster://127.0.0.1:1");
        assert!(cluster.one_slot(&items(&["{u}a", "{u}b", "u"])).is_ok());
        let e = cluster
            .one_slot(&items(&["{u}a", "{v}b", "{w}c"]))
            .expect_err("three slots");
        assert_eq!(e.code(), crate::error::ErrorCode::CrossSlot);
        assert_eq!(e.status(), axum::http::StatusCode::BAD_REQUEST);
        assert!(
            e.message()
                .contains("\"{u}a\" and \"{v}b\" (of 3 hash slots")
        );
        // A reserved key is refused first, as over one Redis.
        let e = cluster
            .one_slot(&items(&["a", "__kv__:x"]))
            .expect_err("reserved");
        assert_eq!(e.code(), crate::error::ErrorCode::BadRequest);
        let single = over("redis://127.0.0.1:1/0");
        assert!(single.one_slot(&items(&["a", "b"])).is_ok());
    }
}
