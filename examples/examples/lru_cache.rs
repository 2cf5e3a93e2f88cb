// cargo run -p examples --example lru_cache
//! A read-through LRU cache in front of a slow database.
//!
//! The cache holds at most 3 rows. On a miss it asks the database and keeps the
//! answer; when it is full, the least recently used row makes room. `stats()` counts
//! the hits, misses and evictions.

use std::cell::Cell;

use kvcore::{MemoryStore, SetOptions, Store, StoreBuilder};

/// Stands in for a slow database: instead of being slow, it counts its queries.
#[derive(Default)]
struct Database {
    queries: Cell<u32>,
}

impl Database {
    fn load(&self, id: &str) -> String {
        self.queries.set(self.queries.get() + 1);
        format!("row {id}")
    }
}

/// The cached row for `id`, loading it from the database on a miss.
fn get_row(cache: &MemoryStore<String>, db: &Database, id: &str) -> kvcore::Result<String> {
    // A `get` that finds the row counts as a use: the row becomes the most recent.
    if let Some(row) = cache.get(id) {
        println!("get {id}: hit");
        return Ok(row);
    }
    let row = db.load(id);
    // Inserting into a full cache evicts the least recently used row first.
    cache.set(id, row.clone(), SetOptions::new())?;
    println!("get {id}: miss, loaded from the database");
    Ok(row)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cache = StoreBuilder::new().capacity(3).build::<String>()?;
    let db = Database::default();

    for id in ["a", "b", "c"] {
        get_row(&cache, &db, id)?;
    }
    // Reading `a` makes it the most recent: from least to most recent, b, c, a.
    assert_eq!(get_row(&cache, &db, "a")?, "row a");
    // `d` needs room, and `b` is the least recently used.
    get_row(&cache, &db, "d")?;

    // `contains` only looks: it neither refreshes LRU order nor counts a hit or miss.
    assert!(!cache.contains("b"), "b was least recently used");
    for id in ["a", "c", "d"] {
        assert!(cache.contains(id), "{id} should still be cached");
    }
    println!("cached: a, c, d (b was evicted)");

    // `b` again: a miss that goes back to the database, and evicts `c` (now c, a, d).
    get_row(&cache, &db, "b")?;
    assert!(!cache.contains("c"));

    let stats = cache.stats();
    println!(
        "hits {}, misses {}, evictions {}, database queries {}",
        stats.hits,
        stats.misses,
        stats.evictions,
        db.queries.get()
    );
    assert_eq!((stats.hits, stats.misses, stats.evictions), (1, 5, 2));
    // Every miss costs exactly one query; the hit cost none.
    assert_eq!(u64::from(db.queries.get()), stats.misses);
    assert_eq!(
        cache.len(),
        3,
        "the cache never holds more than its capacity"
    );
    Ok(())
}
