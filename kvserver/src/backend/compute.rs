//! [`Backend::compute`]: an atomic read-modify-write of one key, for the Redis
//! protocol's commands that change a value in place (`APPEND`, `SETRANGE`,
//! `INCRBYFLOAT`, `SET ... GET`...).
//!
//! Over the local store it is kvcore's [`Store::compute`](kvcore::Store::compute):
//! atomic against every other writer of the key, HTTP requests included. Over Redis
//! it is a compare-and-set script that applies the change only if the key still
//! holds what was read, else reads again (`redis_cache/compute.rs`): atomic against
//! every writer of the key, other kvservers and Redis clients included.

use kvcore::{Bytes, Compute, Computed};

use super::{Backend, Result};
use crate::error::ApiError;

impl Backend {
    /// Calls `f` with the live value of `key` (or `None`) and applies the change it
    /// returns, atomically against every other writer of the key; returns what was
    /// done and what `f` said beside its change (the last call's, since `f` runs
    /// again when another write got in between).
    pub async fn compute<T, F>(&self, key: &str, mut f: F) -> Result<(Computed<Bytes>, T)>
    where
        T: Send + 'static,
        F: FnMut(Option<&Bytes>) -> (Compute<Bytes>, T) + Send + 'static,
    {
        let local = match self {
            Backend::Local(local) => local,
            Backend::Redis(redis) => return redis.compute(key, &mut f).await,
        };
        let key = key.to_owned();
        let (done, said) = local
            .write(move |store| {
                let mut said = None;
                let done = store.compute(&key, &mut |value| {
                    let (change, out) = f(value);
                    said = Some(out);
                    change
                })?;
                Ok((done, said))
            })
            .await?;
        let said =
            said.ok_or_else(|| ApiError::internal("compute applied without calling its function"))?;
        Ok((done, said))
    }
}
