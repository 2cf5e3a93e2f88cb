//! Reads: single keys through the local cache, several keys at once, and listing pages.

use futures_util::StreamExt;

use super::*;

/// Slots one multi-key read asks at once over a cluster.
const READS_IN_FLIGHT: usize = 32;
/// The bits of a cluster cursor's number that hold the master's `SCAN` cursor.
const SCAN_MASK: u64 = (1 << 48) - 1;

impl RedisCache {
    pub(in crate::backend) async fn get_with_ttl(
        &self,
        key: &str,
    ) -> Result<Option<(Bytes, Option<Duration>)>> {
        if reserved(key) {
            self.count(false);
            return Ok(None);
        }
        if let Some(hit) = self.cached(key) {
            self.count(true);
            return Ok(Some(hit));
        }
        let found = self.fetch(key).await?;
        self.count(found.is_some());
        Ok(found.map(|f| {
            let ttl = (f.pttl > 0).then(|| Duration::from_millis(f.pttl.unsigned_abs()));
            (f.value, ttl)
        }))
    }

    pub(in crate::backend) async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        let mut out: Vec<Option<Bytes>> = vec![None; keys.len()];
        let mut missing = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            if reserved(key) {
                continue;
            }
            match self.cached(key) {
                Some((value, _)) => out[i] = Some(value),
                None => missing.push(i),
            }
        }
        // One script per batch of keys sharing a slot (over one Redis: one batch).
        let asked: Vec<&str> = missing.iter().map(|&i| keys[i]).collect();
        let mut reads = Vec::new();
        for group in self.by_slot(&asked) {
            let batch: Vec<&str> = group.iter().map(|&j| asked[j]).collect();
            let at: Vec<usize> = group.iter().map(|&j| missing[j]).collect();
            reads.push(self.read_slot(batch, at));
        }
        let results: Vec<Result<Vec<(usize, Bytes)>>> = futures_util::stream::iter(reads)
            .buffer_unordered(READS_IN_FLIGHT)
            .collect()
            .await;
        for result in results {
            for (i, value) in result? {
                out[i] = Some(value);
            }
        }
        for value in &out {
            self.count(value.is_some());
        }
        Ok(out)
    }

    /// Reads `names`, keys of one slot, with one script; returns the values found,
    /// each with its index from `at`.
    async fn read_slot(&self, names: Vec<&str>, at: Vec<usize>) -> Result<Vec<(usize, Bytes)>> {
        let epochs: Vec<u64> = names.iter().map(|k| *self.slot(k).lock()).collect();
        let books = self.books(names[0]);
        let mut invocation = self.scripts.read_many.prepare_invoke();
        for key in &names {
            invocation.key(*key);
        }
        invocation
            .key(&books.slide)
            .arg(self.sliding_flag())
            .arg(self.default_ms)
            .arg(self.max_value_bytes);
        let replies: Vec<Option<Reply>> = self.run_as(Op::Read(&names), invocation).await?;
        let mut found = Vec::new();
        for (((key, i), epoch), reply) in names.iter().zip(at).zip(epochs).zip(replies) {
            if let Some((v, pttl, slide)) = reply {
                let f = Found {
                    value: self.checked_value(key, v)?,
                    pttl,
                    slide,
                };
                self.cache_if_unchanged(key, epoch, &f);
                found.push((i, f.value));
            }
        }
        Ok(found)
    }

    pub(in crate::backend) async fn contains(&self, key: &str) -> Result<bool> {
        if reserved(key) {
            return Ok(false);
        }
        if self.cache.contains(key) {
            return Ok(true);
        }
        let mut invocation = self.scripts.exists.prepare_invoke();
        invocation.key(key);
        let n: i64 = self.run(invocation).await?;
        Ok(n == 1)
    }

    pub(in crate::backend) async fn ttl(&self, key: &str) -> Result<Option<Option<Duration>>> {
        if reserved(key) {
            return Ok(None);
        }
        let mut invocation = self.scripts.pttl.prepare_invoke();
        invocation.key(key);
        let pttl: i64 = self.run(invocation).await?;
        Ok(match pttl {
            -2 => None,
            n if n < 0 => Some(None),
            n => Some(Some(Duration::from_millis(n.unsigned_abs()))),
        })
    }

    /// One listing page. Masters are listed one after another (over one Redis, the
    /// one), each with its own `SCAN`; the cursor names the master (by its first
    /// slot, in the top 16 bits) and its `SCAN` cursor, and the last key returned
    /// from that cursor's batch.
    pub(in crate::backend) async fn scan(
        &self,
        pattern: Option<&Pattern>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<ScanPage<Bytes>> {
        if limit == 0 {
            return Err(kvcore::Error::InvalidLimit.into());
        }
        let cluster = self.con.is_cluster();
        let tag = if cluster {
            CLUSTER_CURSOR_TAG
        } else {
            CURSOR_TAG
        };
        let invalid = |text: &str| {
            ApiError::from(kvcore::Error::InvalidCursor {
                cursor: text.to_owned(),
            })
        };
        let start = match cursor {
            None => Cursor { at: 0, after: None },
            Some(text) => Cursor::decode(text, tag).ok_or_else(|| invalid(text))?,
        };
        let masters = self.masters().await?;
        let (node_slot, scan_at) = if cluster {
            ((start.at >> 48) as u16, start.at & SCAN_MASK)
        } else {
            (0, start.at)
        };
        // The master serving the cursor's slot now. After a failover that is the
        // replica that took over, whose SCAN order is its own: the listing goes on,
        // but may miss or repeat keys of its slots (see the README).
        let mut node = masters
            .iter()
            .position(|m| m.ranges.iter().any(|&(a, b)| (a..=b).contains(&node_slot)))
            .ok_or_else(|| invalid(cursor.unwrap_or("")))?;
        let pattern = pattern.filter(|p| !p.matches_all());
        // The keys of this page, by the master (first slot) they came from.
        let mut keys: Vec<(u16, Vec<String>)> = Vec::new();
        let mut count = 0;
        // Where the listing resumes; `None` once every master has gone round.
        let mut next = Some(Cursor {
            at: scan_at,
            after: start.after,
        });
        for _ in 0..SCAN_CALLS_PER_PAGE {
            let Some(from) = next.take() else { break };
            if count == limit {
                next = Some(from);
                break;
            }
            let slot = masters[node].first_slot;
            let mut con = self.con.clone();
            let (after, batch): (u64, Vec<Vec<u8>>) = self
                .call(async move {
                    let mut scan = redis::cmd("SCAN");
                    scan.arg(from.at)
                        .arg("COUNT")
                        .arg(SCAN_COUNT)
                        .arg("TYPE")
                        .arg("string");
                    let value = con.on_slot(slot, scan).await?;
                    redis::from_redis_value(value).map_err(RedisError::from)
                })
                .await?;
            if cluster && after > SCAN_MASK {
                return Err(ApiError::internal(format!(
                    "Redis returned a SCAN cursor ({after}) wider than 48 bits"
                )));
            }
            let mut found: Vec<String> = batch
                .into_iter()
                .filter_map(|k| String::from_utf8(k).ok())
                .filter(|k| !reserved(k))
                .filter(|k| pattern.is_none_or(|p| p.matches(k)))
                .filter(|k| from.after.as_deref().is_none_or(|a| k.as_str() > a))
                .collect();
            found.sort_unstable();
            found.dedup();
            let want = limit - count;
            let full = found.len() > want;
            if full {
                // The rest of this batch comes on the next page, after its last key.
                found.truncate(want);
                next = Some(Cursor {
                    at: from.at,
                    after: found.last().cloned(),
                });
            } else if after != 0 {
                next = Some(Cursor {
                    at: after,
                    after: None,
                });
            } else if node + 1 < masters.len() {
                node += 1;
                next = Some(Cursor { at: 0, after: None });
            }
            count += found.len();
            match keys.last_mut() {
                Some((s, list)) if *s == slot => list.extend(found),
                _ => keys.push((slot, found)),
            }
            if full {
                break;
            }
        }
        let mut items = Vec::with_capacity(count);
        for (slot, names) in &keys {
            if names.is_empty() {
                continue;
            }
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            let max = self.max_value_bytes.to_string();
            let mut args: Vec<&[u8]> = vec![max.as_bytes()];
            args.extend(refs.iter().map(|k| k.as_bytes()));
            let mut con = self.con.clone();
            let script = &self.scripts.mget;
            let values: Vec<Option<Vec<u8>>> = self
                .call_as(Op::Read(&refs), async move {
                    let value = con.script_on_slot(*slot, script, &args).await?;
                    redis::from_redis_value(value).map_err(RedisError::from)
                })
                .await?;
            for (key, value) in names.iter().zip(values) {
                if let Some(v) = value {
                    if self.sliding {
                        self.touch(key);
                    }
                    items.push((key.clone(), self.checked_value(key, v)?));
                }
            }
        }
        let slot_of = masters[node].first_slot;
        Ok(ScanPage {
            items,
            next_cursor: next.map(|c| {
                let at = if cluster {
                    u64::from(slot_of) << 48 | c.at
                } else {
                    c.at
                };
                Cursor { at, after: c.after }.encode(tag)
            }),
        })
    }
}
