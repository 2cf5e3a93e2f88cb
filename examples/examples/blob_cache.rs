// cargo run -p examples --example blob_cache
//! A cache of blobs bounded by bytes rather than by count.
//!
//! Thumbnails of very different sizes share a 1 MiB budget: `max_weight` bounds the
//! total of their bytes (plus a small per-entry overhead), the least recently used
//! thumbnails go first when a new one needs room, and a blob larger than the whole
//! budget is refused with an error instead of emptying the cache for nothing.

use std::sync::Arc;

use kvcore::weight::ENTRY_OVERHEAD;
use kvcore::{Error, SetOptions, Store, StoreBuilder};

const BUDGET: u64 = 1 << 20;

fn thumbnail(kib: usize) -> Arc<[u8]> {
    vec![0x42; kib * 1024].into()
}

fn main() -> kvcore::Result<()> {
    // `Arc<[u8]>` values: a hit clones a pointer, not the bytes. The default weight
    // counts their length, the key and `ENTRY_OVERHEAD`.
    let thumbnails = StoreBuilder::new()
        .max_weight(BUDGET)
        .build::<Arc<[u8]>>()?;

    for (name, kib) in [("a.png", 300), ("b.png", 500), ("c.png", 100)] {
        thumbnails.set(name, thumbnail(kib), SetOptions::new())?;
    }
    let used = thumbnails
        .weight()
        .expect("a weight-bounded store counts weight");
    println!("900 KiB of thumbnails weigh {used} of {BUDGET}");
    assert_eq!(used, 900 * 1024 + 3 * (5 + u64::from(ENTRY_OVERHEAD)));

    thumbnails.get("a.png"); // a is in use: b is now the least recently used
    thumbnails.set("d.png", thumbnail(400), SetOptions::new())?; // needs room: b goes
    assert!(!thumbnails.contains("b.png"));
    assert!(thumbnails.contains("a.png") && thumbnails.contains("c.png"));
    println!(
        "after d.png: {} thumbnails, {} bytes, {} evicted",
        thumbnails.len(),
        thumbnails.weight().unwrap_or_default(),
        thumbnails.stats().evictions
    );
    assert!(thumbnails.weight().unwrap_or_default() <= BUDGET);

    match thumbnails.set("poster.png", thumbnail(2048), SetOptions::new()) {
        Err(Error::TooHeavy {
            weight, max_weight, ..
        }) => {
            println!("poster.png refused: it weighs {weight}, the budget is {max_weight}");
        }
        other => panic!("a 2 MiB blob in a 1 MiB cache: {other:?}"),
    }
    assert_eq!(
        thumbnails.len(),
        3,
        "nothing was evicted for the refused blob"
    );
    Ok(())
}
