//! `--load FILE`: read a dataset (.json, .jsonl, .csv), streamed, into the store.
//!
//! Every record passes the same checks as a request (non-empty key, key and value
//! sizes); a record that fails them, or that does not parse, is reported with its
//! file and line and the server does not start. Loading into a writable store is
//! all or nothing: the file is checked to the end before the first record is
//! written, so a bad record leaves the data directory as it was.

use std::fs::File;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, bail};
use kvcore::dataset::{self, Format};
use kvcore::{Bytes, Expiry, JsonText, Store};

use crate::limits::{Limits, check_key, check_value};

/// Pairs are written to the store in batches of this many.
const BATCH: usize = 10_000;
/// A progress line is logged every this many records.
const PROGRESS: u64 = 100_000;

/// Streams the dataset at `path` to `each`, checking keys and values against `limits`.
/// `pass` names what is being done, for the progress lines.
fn read(
    path: &Path,
    limits: &Limits,
    pass: &str,
    mut each: impl FnMut(String, JsonText) -> kvcore::Result<()>,
) -> anyhow::Result<u64> {
    let Some(format) = Format::from_path(path) else {
        bail!(
            "{}: unknown dataset format; use a .json, .jsonl or .csv file",
            path.display()
        );
    };
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let started = Instant::now();
    let name = path.display().to_string();
    let mut count = 0u64;
    let records = dataset::read(file, format, &name, |key, value, line| {
        check_key(&key, limits)
            .and_then(|()| check_value(&value, limits))
            .map_err(|e| kvcore::Error::dataset(&name, line, e.message()))?;
        each(key, value)?;
        count += 1;
        if count.is_multiple_of(PROGRESS) {
            tracing::info!(records = count, file = %name, "{pass}");
        }
        Ok(())
    })?;
    tracing::info!(
        records,
        file = %name,
        seconds = started.elapsed().as_secs_f64(),
        "{pass}: done"
    );
    Ok(records)
}

/// Reads the whole dataset into pairs, for a read-only store. Each value is its
/// compact JSON text, as an HTTP write stores it.
pub fn read_all(path: &Path, limits: &Limits) -> anyhow::Result<Vec<(String, Bytes)>> {
    let mut pairs = Vec::new();
    read(path, limits, "loading dataset", |k, v| {
        pairs.push((k, v.into()));
        Ok(())
    })?;
    Ok(pairs)
}

/// Imports the dataset into a writable store, overwriting keys it already has.
///
/// Two passes over the file: the first checks every record and writes nothing, the
/// second writes. Memory stays bounded by one batch whatever the file's size.
pub fn import(path: &Path, store: &dyn Store<Bytes>, limits: &Limits) -> anyhow::Result<u64> {
    read(path, limits, "checking dataset", |_, _| Ok(()))?;
    let mut batch = Vec::with_capacity(BATCH);
    let records = read(path, limits, "importing dataset", |k, v| {
        batch.push((k, v.into()));
        if batch.len() == BATCH {
            store.set_many(std::mem::take(&mut batch), Expiry::Default)?;
        }
        Ok(())
    })?;
    store.set_many(batch, Expiry::Default)?;
    Ok(records)
}
