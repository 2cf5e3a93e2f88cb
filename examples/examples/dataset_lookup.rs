// cargo run -p examples --example dataset_lookup
//! Looking things up in a read-only dataset.
//!
//! `build_read_only` turns any iterator of `(key, value)` pairs into an immutable
//! store: reads take no lock, scans come back in key order, and every write is refused
//! with `Error::ReadOnly`. Here the dataset is generated in the program: users and
//! teams under uuid-like ids, with JSON values.

use kvcore::{Error, Pattern, SetOptions, Store, StoreBuilder};
use serde_json::{Value as Json, json};

/// A uuid-shaped id that looks random but is the same for the same `n` on every run.
fn uuid_like(n: u64) -> String {
    // SplitMix64: scrambles a counter into well-spread bits.
    let mix = |mut x: u64| {
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^ (x >> 31)
    };
    let (hi, lo) = (mix(2 * n), mix(2 * n + 1));
    let (a, b, c) = (hi >> 32, (hi >> 16) & 0xffff, hi & 0xfff);
    let (d, e) = (lo >> 48, lo & 0xffff_ffff_ffff);
    format!("{a:08x}-{b:04x}-4{c:03x}-{d:04x}-{e:012x}")
}

/// 12 users and 3 teams; keys are `user:<id>` and `team:<id>`.
fn dataset() -> impl Iterator<Item = (String, Json)> {
    let users = (0..12).map(|n| {
        let user = json!({ "name": format!("user {n}"), "admin": n % 5 == 0 });
        (format!("user:{}", uuid_like(n)), user)
    });
    let teams = (0..3).map(|n| {
        let team = json!({ "name": format!("team {n}"), "size": 4 });
        (format!("team:{}", uuid_like(100 + n)), team)
    });
    users.chain(teams)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let store = StoreBuilder::new().build_read_only(dataset())?;
    println!("{} records loaded", store.len());

    // Point lookups.
    let key = format!("user:{}", uuid_like(0));
    let user = store.get(&key).ok_or("user 0 should be in the dataset")?;
    println!("{key} -> {user}");
    assert_eq!(user["admin"], json!(true));
    assert_eq!(store.get("user:00000000-0000-4000-8000-000000000000"), None);

    // A glob scan, 5 at a time. Each page hands back a cursor for the next one;
    // `None` means the scan is complete.
    let users = Pattern::new("user:*")?;
    let (mut cursor, mut seen, mut page) = (None, Vec::new(), 0);
    loop {
        let batch = store.scan(Some(&users), cursor.as_deref(), 5)?;
        page += 1;
        println!("page {page}: {} users", batch.items.len());
        seen.extend(batch.items.into_iter().map(|(key, _)| key));
        cursor = batch.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!((page, seen.len()), (3, 12));
    // A read-only store scans in key order, so the pages join up sorted.
    assert!(seen.is_sorted());

    // Writes of every kind are refused; the store is exactly what it was built from.
    match store.set(&key, json!({ "name": "mallory" }), SetOptions::new()) {
        Err(err @ Error::ReadOnly) => println!("set refused: {err}"),
        other => return Err(format!("expected Error::ReadOnly, got {other:?}").into()),
    }
    assert!(matches!(store.delete(&key), Err(Error::ReadOnly)));

    // Reads are counted like any store's: 2 gets above (a hit, then a miss).
    let stats = store.stats();
    println!("hits {}, misses {}", stats.hits, stats.misses);
    assert_eq!((stats.hits, stats.misses), (1, 1));
    Ok(())
}
