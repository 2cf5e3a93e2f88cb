//! `--load FILE`: read a dataset (.json, .jsonl, .csv), streamed, into the store.

use std::fs::File;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, bail};
use kvcore::dataset::{self, Format};
use kvcore::{Expiry, JsonText, Store};

use crate::extract::{check_key, check_value};
use crate::state::Limits;

/// Pairs are written to the store in batches of this many.
const BATCH: usize = 10_000;
/// A progress line is logged every this many records.
const PROGRESS: u64 = 100_000;

/// Streams the dataset at `path` to `each`, checking keys and values against `limits`.
fn read(
    path: &Path,
    limits: &Limits,
    mut each: impl FnMut(String, JsonText) -> anyhow::Result<()>,
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
    let mut failure = None;
    let mut count = 0u64;
    let read = dataset::read(file, format, &name, |key, value| {
        count += 1;
        let checked = check_key(&key, limits)
            .and_then(|()| check_value(&value, limits))
            .map_err(|e| anyhow::anyhow!("{name}: record {count}: {e}"));
        let result = checked.and_then(|()| each(key, value));
        if count.is_multiple_of(PROGRESS) {
            tracing::info!(records = count, file = %name, "loading");
        }
        result.map_err(|e| {
            failure = Some(e);
            kvcore::Error::Config(String::new())
        })
    });
    if let Some(e) = failure {
        return Err(e);
    }
    let records = read?;
    tracing::info!(
        records,
        file = %name,
        seconds = started.elapsed().as_secs_f64(),
        "dataset loaded"
    );
    Ok(records)
}

/// Reads the whole dataset into pairs, for a read-only store.
pub fn read_all(path: &Path, limits: &Limits) -> anyhow::Result<Vec<(String, JsonText)>> {
    let mut pairs = Vec::new();
    read(path, limits, |k, v| {
        pairs.push((k, v));
        Ok(())
    })?;
    Ok(pairs)
}

/// Imports the dataset into a writable store, overwriting keys it already has.
pub fn import(path: &Path, store: &dyn Store<JsonText>, limits: &Limits) -> anyhow::Result<u64> {
    let mut batch = Vec::with_capacity(BATCH);
    let records = read(path, limits, |k, v| {
        batch.push((k, v));
        if batch.len() == BATCH {
            store.set_many(std::mem::take(&mut batch), Expiry::Default)?;
        }
        Ok(())
    })?;
    store.set_many(batch, Expiry::Default)?;
    Ok(records)
}
