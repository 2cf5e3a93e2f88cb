//! `compute`: an atomic read-modify-write of one key in Redis, as optimistic
//! concurrency. The key's value is read (from Redis, not the local cache), the
//! caller's function decides, and `lua/compute_head.lua` applies the change only if
//! the key still holds the value that was read; otherwise the value is read again
//! and the function runs again. Atomic against every writer of the key, other
//! kvservers and other Redis clients included; a TTL is kept or set as `set` does.
//!
//! Within one server, computes of a key take turns (one of [`TURNS`] async locks,
//! chosen by the key's hash, held across the round trips), so that only writers
//! elsewhere can make a compute read again: forty clients appending to one key
//! through two servers race as two writers, not forty.

use kvcore::{Compute, Computed};

use super::*;

/// Locks that computes of keys take turns on (keys that share one wait for each
/// other's round trips).
pub(super) const TURNS: usize = 256;

/// Reads of a key one `compute` makes before it gives up (`503`, nothing applied)
/// because other writers changed the key each time.
const COMPUTE_TRIES: usize = 100;

impl RedisCache {
    pub(in crate::backend) async fn compute<T, F>(
        &self,
        key: &str,
        f: &mut F,
    ) -> Result<(Computed<Bytes>, T)>
    where
        F: FnMut(Option<&Bytes>) -> (Compute<Bytes>, T),
    {
        refuse_reserved(key)?;
        let turn = self.hasher.hash_one(key) as usize % TURNS;
        let _turn = self.turns[turn].lock().await;
        let books = self.books(key);
        for _ in 0..COMPUTE_TRIES {
            let seen = self.read_now(key, false).await?.map(|found| found.value);
            let (change, said) = f(seen.as_ref());
            let (value, expiry) = match change {
                Compute::Keep => return Ok((Computed::Unchanged(seen), said)),
                Compute::Delete if seen.is_none() => return Ok((Computed::Unchanged(None), said)),
                Compute::Delete => (None, Expiry::Keep),
                Compute::Set(value) => (Some(value), Expiry::Keep),
                Compute::SetWith(value, expiry) => (Some(value), expiry),
                _ => return Err(ApiError::internal("a change compute does not know")),
            };
            let (kind, ttl) = self.expiry_args(expiry);
            let mut invocation = self.scripts.compute.prepare_invoke();
            invocation
                .key(key)
                .key(&books.slide)
                .arg(value.as_ref().map_or(&[][..], Bytes::as_bytes))
                .arg("")
                .arg(kind)
                .arg(ttl)
                .arg(self.default_ms)
                .arg(self.sliding_flag())
                .arg(if seen.is_some() { "1" } else { "0" })
                .arg(seen.as_ref().map_or(&[][..], Bytes::as_bytes))
                .arg(if value.is_none() { "delete" } else { "set" });
            let (code, pttl, slide): (i64, i64, i64) = self.run_write(key, invocation).await?;
            let done = match (code, value) {
                (-1, _) => continue,
                (0, _) | (_, None) => {
                    self.written(key, None);
                    Computed::Deleted
                }
                (code, Some(value)) => {
                    self.written(
                        key,
                        Some(&Found {
                            value: value.clone(),
                            pttl,
                            slide,
                        }),
                    );
                    if code == 1 {
                        Computed::Created(value)
                    } else {
                        Computed::Replaced(value)
                    }
                }
            };
            return Ok((done, said));
        }
        Err(ApiError::unavailable(
            "the key changed each time it was read; nothing was applied",
            1,
        ))
    }
}
