//! The call layer: every Redis call under `--backend-timeout`, and what a failure
//! means for the client (`503` not applied, `504` outcome unknown, `502`).

use super::*;

impl RedisCache {
    /// Runs one Redis call that reads nothing the limits cover (`SCAN`, `PING`...)
    /// within the timeout, mapping failures to the client's error.
    pub(super) async fn call<T>(
        &self,
        call: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T> {
        self.call_as(Op::Read(&[]), call).await
    }

    /// Runs one Redis call within the timeout; what it does (`op`) decides what a
    /// failure tells the client.
    pub(super) async fn call_as<T>(
        &self,
        op: Op<'_>,
        call: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T> {
        self.call_within(op, self.timeout, call).await
    }

    /// As [`RedisCache::call_as`], within `limit` rather than the whole timeout.
    pub(super) async fn call_within<T>(
        &self,
        op: Op<'_>,
        limit: Duration,
        call: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T> {
        if matches!(op, Op::Write) {
            crate::backend::write_starts();
        }
        match tokio::time::timeout(limit, call).await {
            Ok(Ok(value)) => {
                if self.down.load(Relaxed) && self.down.swap(false, Relaxed) {
                    tracing::info!(url = %self.url, "the Redis backend answers again");
                }
                Ok(value)
            }
            Ok(Err(e)) => Err(self.failure(&e, op)),
            Err(_) => {
                let detail = format!("no answer within {limit:?}");
                Err(match op {
                    Op::Write => self.unknown(&detail),
                    Op::Read(_) => self.unreachable(&detail),
                })
            }
        }
    }

    /// A write was sent, or may have been, and no answer came.
    pub(super) fn unknown(&self, detail: &str) -> ApiError {
        if !self.down.swap(true, Relaxed) {
            tracing::warn!(
                url = %self.url,
                detail,
                "the Redis backend does not answer; writes get 504, reads 503, until it does"
            );
        }
        ApiError::outcome_unknown(&format!(
            "the write was sent to Redis and no answer came ({detail})"
        ))
    }

    pub(super) fn unreachable(&self, detail: &str) -> ApiError {
        if !self.down.swap(true, Relaxed) {
            tracing::warn!(
                url = %self.url,
                detail,
                "the Redis backend does not answer; requests get 503 until it does"
            );
        }
        ApiError::unavailable("the Redis backend does not answer; retry shortly", 1)
    }

    pub(super) fn failure(&self, e: &RedisError, op: Op<'_>) -> ApiError {
        let text = e.to_string();
        // The errors the scripts raise themselves.
        match e.code() {
            Some("KVTOOLARGE") => {
                let mut detail = e.detail().unwrap_or("").split_whitespace();
                let bytes = detail.next().and_then(|n| n.parse().ok()).unwrap_or(0);
                let at = detail.next().and_then(|i| i.parse::<usize>().ok());
                let key = match (op, at) {
                    (Op::Read(keys), Some(i)) => keys.get(i.wrapping_sub(1)).copied(),
                    _ => None,
                };
                return ApiError::stored_value_too_large(
                    key.unwrap_or("?"),
                    bytes,
                    self.max_value_bytes,
                );
            }
            Some("KVFULL") => return ApiError::counters_full(self.max_counters),
            Some("KVIDEMREUSED") => return ApiError::idempotency_key_reused(),
            _ => {}
        }
        if e.is_connection_refusal() {
            // Nothing was sent.
            return self.unreachable(&text);
        }
        // A cluster that cannot run the command now (a master down, a failover or a
        // slot move under way): nothing was applied; logged once, like an outage.
        let cluster_busy = matches!(
            e.code(),
            Some(
                "MOVED"
                    | "ASK"
                    | "TRYAGAIN"
                    | "CLUSTERDOWN"
                    | "MASTERDOWN"
                    | "READONLY"
                    | "LOADING"
            )
        ) || e.kind() == redis::ErrorKind::ClusterConnectionNotFound;
        if cluster_busy {
            return self.unreachable(&text);
        }
        if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() {
            return match op {
                Op::Write => self.unknown(&text),
                Op::Read(_) => self.unreachable(&text),
            };
        }
        if text.contains("overflow") {
            return ApiError::not_an_integer("adding to the value would overflow a 64-bit integer");
        }
        if text.contains("not an integer") {
            return ApiError::not_an_integer("the value is not an integer");
        }
        if text.contains("WRONGTYPE") {
            return ApiError::not_an_integer(
                "the key holds a Redis value of another type (a hash, a list...), not an integer",
            );
        }
        // Redis is there but refuses (out of memory, a read-only replica, loading...).
        tracing::warn!(url = %self.url, error = %text, "Redis refused a command");
        ApiError::unavailable(
            format!(
                "the Redis backend refused the request ({}); retry shortly",
                e.code().unwrap_or("error")
            ),
            1,
        )
    }

    /// Runs a script that reads nothing the limits cover, or restarts TTLs.
    pub(super) async fn run<T: redis::FromRedisValue>(
        &self,
        invocation: redis::ScriptInvocation<'_>,
    ) -> Result<T> {
        self.run_as(Op::Read(&[]), invocation).await
    }

    /// Runs a script that writes keys of the slot of `anchor` (one of them), then,
    /// with `--backend-wait-replicas N`, waits until N replicas have it.
    pub(super) async fn run_write<T: redis::FromRedisValue>(
        &self,
        anchor: &str,
        invocation: redis::ScriptInvocation<'_>,
    ) -> Result<T> {
        let started = std::time::Instant::now();
        let out = self.run_as(Op::Write, invocation).await?;
        let left = self.timeout.saturating_sub(started.elapsed());
        self.replicated(super::layout::slot(anchor), left).await?;
        Ok(out)
    }

    /// With `--backend-wait-replicas N`: waits (Redis `WAIT`, on the connection the
    /// write went through) until N replicas of the master serving `slot` have every
    /// write sent to it so far, for at most `left` (what the write left of the backend
    /// timeout). Fewer in time is `504 outcome_unknown`: the master applied the write,
    /// but a failover now could lose it.
    pub(super) async fn replicated(&self, slot: u16, left: Duration) -> Result<()> {
        if self.wait_replicas == 0 {
            return Ok(());
        }
        let mut wait = redis::cmd("WAIT");
        wait.arg(self.wait_replicas)
            .arg(u64::try_from(left.as_millis()).unwrap_or(u64::MAX).max(1));
        let mut con = self.con.clone();
        // WAIT answers once its own timeout is up; the margin is for its round trip.
        let limit = left + Duration::from_millis(100);
        let reached = self
            .call_within(Op::Write, limit, async move {
                let value = con.on_slot(slot, wait).await?;
                redis::from_redis_value::<usize>(value).map_err(redis::RedisError::from)
            })
            .await?;
        if reached < self.wait_replicas {
            return Err(ApiError::outcome_unknown(&format!(
                "Redis applied the write, but only {reached} of the {} replicas that \
                 --backend-wait-replicas asks for confirmed it within {:?}",
                self.wait_replicas, self.timeout
            )));
        }
        Ok(())
    }

    pub(super) async fn run_as<T: redis::FromRedisValue>(
        &self,
        op: Op<'_>,
        invocation: redis::ScriptInvocation<'_>,
    ) -> Result<T> {
        let mut con = self.con.clone();
        self.call_as(op, async move { invocation.invoke_async(&mut con).await })
            .await
    }

    /// Runs an [`idempotent`] script: adds `idem`'s arguments, and returns the outcome
    /// and whether it was replayed.
    /// Its outcome is recorded in the bookkeeping keys of `anchor`'s slot, which every
    /// key the script writes shares.
    pub(super) async fn run_once(
        &self,
        anchor: &str,
        mut invocation: redis::ScriptInvocation<'_>,
        idem: Option<&IdempotencyKey>,
    ) -> Result<Applied<String>> {
        let books = self.books(anchor);
        invocation.key(&books.idem).key(&books.idem_expiry);
        match idem {
            Some(idem) => invocation
                .arg("1")
                .arg(idem.key())
                .arg(idem.fingerprint())
                .arg(self.idempotency_ms),
            None => invocation.arg("0").arg("").arg("").arg(0),
        };
        let (replayed, value): (i64, String) = self.run_write(anchor, invocation).await?;
        Ok(Applied {
            value,
            replayed: replayed == 1,
        })
    }

    /// A value read from Redis, checked against the value limit. The read scripts
    /// refuse a larger value before they send it (`KVTOOLARGE`); this check keeps the
    /// limit true of every value this backend hands on, however it was read.
    pub(super) fn checked_value(&self, key: &str, bytes: Vec<u8>) -> Result<Bytes> {
        if bytes.len() > self.max_value_bytes {
            return Err(ApiError::stored_value_too_large(
                key,
                bytes.len() as u64,
                self.max_value_bytes,
            ));
        }
        Ok(Bytes::from(bytes))
    }

    /// `PING`, within the timeout; over a cluster, every master must also report
    /// `cluster_state:ok`.
    pub async fn ping(&self) -> Result<()> {
        if self.con.is_cluster() {
            return self.cluster_ready().await;
        }
        let mut con = self.con.clone();
        let _: String = self
            .call(async move { redis::cmd("PING").query_async(&mut con).await })
            .await?;
        Ok(())
    }
}
