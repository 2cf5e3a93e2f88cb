//! The read-only store: built once from a dataset, immutable, reads take no lock.
//!
//! Pairs are kept in one vector sorted by key, with a hash index of positions beside
//! it. Nothing changes after the build, so lookups need no lock at all; scans walk the
//! sorted vector and their cursors name the last key returned. The only writes are
//! the hit and miss counts, each thread's in a cell of its own (see `tally.rs`).

use std::time::Duration;

use hashbrown::HashTable;

use crate::compute::{Compute, Computed};
use crate::cursor::{Cursor, MEMORY_TAG};
use crate::loader::{Failed, Load, LoadAsync, LoadFuture};
use crate::store::{Expiry, Mode, ScanPage, SetOptions, SetOutcome, Stats, Store};
use crate::tally::Tally;
use crate::{Error, Pattern, Result, Value};

type Hasher = hashbrown::DefaultHashBuilder;

/// An immutable store over a dataset. Build one with
/// [`StoreBuilder::build_read_only`](crate::StoreBuilder::build_read_only).
///
/// Every write returns [`Error::ReadOnly`]. Duplicate keys in the dataset: the last
/// pair wins.
///
/// ```
/// use kvcore::{Error, SetOptions, Store, StoreBuilder};
///
/// let store = StoreBuilder::new()
///     .build_read_only(vec![("fr".to_string(), "Paris"), ("it".to_string(), "Rome")])?;
/// assert_eq!(store.get("it"), Some("Rome"));
/// assert!(matches!(store.set("de", "Berlin", SetOptions::new()), Err(Error::ReadOnly)));
/// # Ok::<(), kvcore::Error>(())
/// ```
pub struct ReadOnlyStore<V> {
    pairs: Vec<(Box<str>, V)>,
    index: HashTable<usize>,
    hasher: Hasher,
    reads: Tally,
}

impl<V> std::fmt::Debug for ReadOnlyStore<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadOnlyStore")
            .field("len", &self.pairs.len())
            .finish()
    }
}

impl<V: Value> ReadOnlyStore<V> {
    pub(crate) fn new(pairs: impl IntoIterator<Item = (String, V)>) -> Self {
        let mut pairs: Vec<(Box<str>, V)> = pairs
            .into_iter()
            .map(|(k, v)| (k.into_boxed_str(), v))
            .collect();
        // A stable sort keeps duplicates in input order; keep the last of each run.
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        let mut deduped: Vec<(Box<str>, V)> = Vec::with_capacity(pairs.len());
        for pair in pairs {
            match deduped.last_mut() {
                Some(last) if last.0 == pair.0 => *last = pair,
                _ => deduped.push(pair),
            }
        }
        deduped.shrink_to_fit();
        let hasher = Hasher::default();
        let mut index = HashTable::with_capacity(deduped.len());
        for (i, (key, _)) in deduped.iter().enumerate() {
            index.insert_unique(hash(&hasher, key), i, |&j| hash(&hasher, &deduped[j].0));
        }
        ReadOnlyStore {
            pairs: deduped,
            index,
            hasher,
            reads: Tally::new(),
        }
    }

    fn lookup(&self, key: &str) -> Option<&V> {
        let h = hash(&self.hasher, key);
        let found = self
            .index
            .find(h, |&i| &*self.pairs[i].0 == key)
            .map(|&i| &self.pairs[i].1);
        self.reads.count(found.is_some());
        found
    }

    fn position(&self, key: &str) -> Option<usize> {
        let h = hash(&self.hasher, key);
        self.index.find(h, |&i| &*self.pairs[i].0 == key).copied()
    }
}

fn hash(hasher: &Hasher, key: &str) -> u64 {
    use std::hash::BuildHasher;
    hasher.hash_one(key)
}

impl<V: Value> Store<V> for ReadOnlyStore<V> {
    fn get(&self, key: &str) -> Option<V> {
        self.lookup(key).cloned()
    }

    fn get_with_ttl(&self, key: &str) -> Option<(V, Option<Duration>)> {
        self.lookup(key).map(|v| (v.clone(), None))
    }

    fn get_many(&self, keys: &[&str]) -> Vec<Option<V>> {
        keys.iter().map(|k| self.get(k)).collect()
    }

    fn contains(&self, key: &str) -> bool {
        self.position(key).is_some()
    }

    fn ttl(&self, key: &str) -> Option<Option<Duration>> {
        self.position(key).map(|_| None)
    }

    fn set(&self, _: &str, _: V, _: SetOptions) -> Result<SetOutcome> {
        Err(Error::ReadOnly)
    }

    fn set_many(&self, _: Vec<(String, V)>, _: Expiry) -> Result<usize> {
        Err(Error::ReadOnly)
    }

    fn insert_all_absent(&self, _: Vec<(String, V)>, _: Expiry) -> Result<bool> {
        Err(Error::ReadOnly)
    }

    fn update_all_present(&self, _: Vec<(String, V)>, _: Expiry) -> Result<bool> {
        Err(Error::ReadOnly)
    }

    fn delete(&self, _: &str) -> Result<bool> {
        Err(Error::ReadOnly)
    }

    fn expire(&self, _: &str, _: Duration) -> Result<bool> {
        Err(Error::ReadOnly)
    }

    fn clear_ttl(&self, _: &str) -> Result<bool> {
        Err(Error::ReadOnly)
    }

    fn incr(&self, _: &str, _: i64) -> Result<i64> {
        Err(Error::ReadOnly)
    }

    fn len(&self) -> usize {
        self.pairs.len()
    }

    fn clear(&self) -> Result<usize> {
        Err(Error::ReadOnly)
    }

    fn scan(
        &self,
        pattern: Option<&Pattern>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<ScanPage<V>> {
        if limit == 0 {
            return Err(Error::InvalidLimit);
        }
        let decoded = cursor.map(|text| {
            Cursor::decode(text, MEMORY_TAG)
                .filter(|c| c.at == 0)
                .ok_or_else(|| Cursor::invalid(text))
        });
        let start = match decoded.transpose()? {
            Some(Cursor {
                after: Some(after), ..
            }) => self.pairs.partition_point(|(k, _)| **k <= *after),
            _ => 0,
        };
        let pattern = pattern.filter(|p| !p.matches_all());
        // Every match must start with the literal prefix, and the pairs are sorted, so
        // the scan can jump to the first key with that prefix and stop after the last.
        let prefix = pattern.map_or("", |p| p.literal_prefix());
        let start = start.max(self.pairs.partition_point(|(k, _)| **k < *prefix));
        let mut items = Vec::new();
        let mut last = None;
        for (key, value) in self.pairs[start..].iter() {
            if !key.starts_with(prefix) {
                break;
            }
            if pattern.is_some_and(|p| !p.matches(key)) {
                continue;
            }
            if items.len() == limit {
                let after = last.map(str::to_owned);
                let next = Cursor { at: 0, after }.encode(MEMORY_TAG);
                return Ok(ScanPage {
                    items,
                    next_cursor: Some(next),
                });
            }
            items.push((key.to_string(), value.clone()));
            last = Some(&**key);
        }
        Ok(ScanPage {
            items,
            next_cursor: None,
        })
    }

    fn stats(&self) -> Stats {
        let (hits, misses) = self.reads.sums();
        Stats {
            hits,
            misses,
            ..Stats::default()
        }
    }

    fn purge_expired(&self, _: usize) -> usize {
        0
    }

    fn mode(&self) -> Mode {
        Mode {
            read_only: true,
            ..Mode::default()
        }
    }

    fn weight(&self) -> Option<u64> {
        None
    }

    fn compute(&self, _: &str, _: &mut dyn FnMut(Option<&V>) -> Compute<V>) -> Result<Computed<V>> {
        Err(Error::ReadOnly)
    }

    /// A key of the dataset is returned as it is (the loaders of
    /// [`StoreExt`](crate::StoreExt) find it before they get here); any other is
    /// refused with [`Error::ReadOnly`], and `load` never runs.
    fn single_flight(
        &self,
        key: &str,
        _: SetOptions,
        load: &mut Load<'_, V>,
    ) -> std::result::Result<V, Failed> {
        self.position(key)
            .map(|i| self.pairs[i].1.clone())
            .ok_or_else(|| load.refuse(Error::ReadOnly))
    }

    fn single_flight_async<'a>(
        &'a self,
        key: &'a str,
        _: SetOptions,
        load: LoadAsync<'a, V>,
    ) -> LoadFuture<'a, V> {
        let found = self
            .position(key)
            .map(|i| self.pairs[i].1.clone())
            .ok_or_else(|| load.refuse(Error::ReadOnly));
        Box::pin(std::future::ready(found))
    }
}
