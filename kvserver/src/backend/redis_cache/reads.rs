//! Reads: single keys through the local cache, several keys at once, and listing pages.

use super::*;

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
        if !missing.is_empty() {
            let epochs: Vec<u64> = missing
                .iter()
                .map(|&i| *self.slot(keys[i]).lock())
                .collect();
            let mut invocation = self.scripts.read_many.prepare_invoke();
            for &i in &missing {
                invocation.key(keys[i]);
            }
            invocation
                .key(SLIDE_KEY)
                .arg(self.sliding_flag())
                .arg(self.default_ms)
                .arg(self.max_value_bytes);
            let asked: Vec<&str> = missing.iter().map(|&i| keys[i]).collect();
            let replies: Vec<Option<Reply>> = self.run_as(Op::Read(&asked), invocation).await?;
            for ((&i, epoch), reply) in missing.iter().zip(epochs).zip(replies) {
                if let Some((v, pttl, slide)) = reply {
                    let found = Found {
                        value: self.checked_value(keys[i], v)?,
                        pttl,
                        slide,
                    };
                    self.cache_if_unchanged(keys[i], epoch, &found);
                    out[i] = Some(found.value);
                }
            }
        }
        for value in &out {
            self.count(value.is_some());
        }
        Ok(out)
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

    pub(in crate::backend) async fn scan(
        &self,
        pattern: Option<&Pattern>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<ScanPage<Bytes>> {
        if limit == 0 {
            return Err(kvcore::Error::InvalidLimit.into());
        }
        let start = match cursor {
            None => Cursor { at: 0, after: None },
            Some(text) => Cursor::decode(text, CURSOR_TAG).ok_or_else(|| {
                ApiError::from(kvcore::Error::InvalidCursor {
                    cursor: text.to_owned(),
                })
            })?,
        };
        let pattern = pattern.filter(|p| !p.matches_all());
        let mut keys: Vec<String> = Vec::new();
        // Where the listing resumes; `None` once SCAN has gone round.
        let mut next = Some(start);
        for _ in 0..SCAN_CALLS_PER_PAGE {
            let Some(from) = next.take() else { break };
            if keys.len() == limit {
                next = Some(from);
                break;
            }
            let mut con = self.con.clone();
            let (after, batch): (u64, Vec<Vec<u8>>) = self
                .call(async move {
                    redis::cmd("SCAN")
                        .arg(from.at)
                        .arg("COUNT")
                        .arg(SCAN_COUNT)
                        .arg("TYPE")
                        .arg("string")
                        .query_async(&mut con)
                        .await
                })
                .await?;
            let mut found: Vec<String> = batch
                .into_iter()
                .filter_map(|k| String::from_utf8(k).ok())
                .filter(|k| !reserved(k))
                .filter(|k| pattern.is_none_or(|p| p.matches(k)))
                .filter(|k| from.after.as_deref().is_none_or(|a| k.as_str() > a))
                .collect();
            found.sort_unstable();
            found.dedup();
            let want = limit - keys.len();
            if found.len() > want {
                // The rest of this batch comes on the next page, after its last key.
                found.truncate(want);
                next = Some(Cursor {
                    at: from.at,
                    after: found.last().cloned(),
                });
                keys.extend(found);
                break;
            }
            keys.extend(found);
            next = (after != 0).then_some(Cursor {
                at: after,
                after: None,
            });
        }
        let mut items = Vec::with_capacity(keys.len());
        if !keys.is_empty() {
            let mut invocation = self.scripts.mget.prepare_invoke();
            for key in &keys {
                invocation.key(key.as_str());
            }
            invocation.arg(self.max_value_bytes);
            let names: Vec<&str> = keys.iter().map(String::as_str).collect();
            let values: Vec<Option<Vec<u8>>> = self.run_as(Op::Read(&names), invocation).await?;
            for (key, value) in keys.iter().zip(values) {
                if let Some(v) = value {
                    if self.sliding {
                        self.touch(key);
                    }
                    items.push((key.clone(), self.checked_value(key, v)?));
                }
            }
        }
        Ok(ScanPage {
            items,
            next_cursor: next.map(|c| c.encode(CURSOR_TAG)),
        })
    }
}
