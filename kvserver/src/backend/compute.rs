//! [`Backend::compute`]: an atomic read-modify-write of one key, for the Redis
//! protocol's commands that change a value in place (`APPEND`, `SETRANGE`,
//! `INCRBYFLOAT`, `SET ... GET`...).
//!
//! Over the local store it is kvcore's [`Store::compute`](kvcore::Store::compute):
//! atomic against every other writer of the key, HTTP requests included. The Redis
//! backend does not offer it (a value changed in Redis would need a script per
//! command and its own TTL bookkeeping): there it is `400 bad_request`, and the
//! Redis-protocol commands that need it say so before calling.

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
        let Some(local) = self.local() else {
            return Err(ApiError::bad_request(
                "changing a value in place is not available with --backend",
            ));
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
