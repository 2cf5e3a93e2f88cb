// cargo run -p examples --example cache_aside
//! A cache-aside loader in front of a slow function, shared by many threads.
//!
//! Eight threads ask for the same few prices at once. `get_with` gives each the
//! cached price, or loads it: one thread calls the slow function per key, the others
//! wait for its answer instead of calling it too (single flight). Prices are cached
//! for a minute; a lookup that fails (an unknown product) is cached nowhere, and every
//! caller waiting for it gets the same error.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::Duration;

use kvcore::{SetOptions, Store, StoreBuilder, StoreExt};

/// The slow pricing service: it takes a moment to answer and counts its calls.
struct Pricing {
    calls: AtomicU32,
}

#[derive(Debug, thiserror::Error)]
enum PriceError {
    #[error("no such product: {0}")]
    Unknown(String),
    #[error("the cache refused the price: {0}")]
    Cache(#[from] kvcore::Error),
}

impl Pricing {
    fn price(&self, product: &str) -> Result<u64, PriceError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        thread::sleep(Duration::from_millis(50)); // the slow part
        match product {
            "apple" => Ok(120),
            "pear" => Ok(95),
            "plum" => Ok(60),
            other => Err(PriceError::Unknown(other.to_string())),
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pricing = Pricing {
        calls: AtomicU32::new(0),
    };
    let cache = StoreBuilder::new().capacity(10_000).build::<u64>()?;
    let for_a_minute = SetOptions::new().ttl(Duration::from_secs(60));

    let answers: Vec<HashMap<&str, Result<u64, Arc<PriceError>>>> = thread::scope(|s| {
        let workers: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    ["apple", "pear", "plum", "kiwi"]
                        .into_iter()
                        .map(|product| {
                            let price = cache.try_get_with_options(product, for_a_minute, || {
                                pricing.price(product)
                            });
                            (product, price)
                        })
                        .collect()
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });

    for answer in &answers {
        assert_eq!(answer["apple"].as_ref().ok(), Some(&120));
        assert_eq!(answer["pear"].as_ref().ok(), Some(&95));
        let kiwi = answer["kiwi"].as_ref().map_err(|e| &**e);
        assert!(matches!(kiwi, Err(PriceError::Unknown(_))));
    }
    let calls = pricing.calls.load(Ordering::SeqCst);
    println!("8 threads x 4 products = 32 lookups, {calls} calls to the pricing service");
    // Once per price; the unknown kiwi is asked again by those that came after a
    // failed lookup, since errors are not cached.
    assert!((4..=3 + 8).contains(&calls), "{calls} calls");
    assert!(!cache.contains("kiwi"), "errors are not cached");
    assert_eq!(cache.get("plum"), Some(60));
    assert!(
        cache.ttl("plum").flatten().is_some(),
        "prices live a minute"
    );
    // The threads all started at once, so each missed every product and waited for
    // the one load; asked again, they hit.
    let stats = cache.stats();
    println!("cache: {} hits, {} misses", stats.hits, stats.misses);
    assert_eq!(stats.misses, 32);
    Ok(())
}
