// cargo run -p examples --example async_loader
//! An async cache in front of a database-like call, under tokio.
//!
//! A hundred requests for the same user arrive at once; `get_with_async` makes one
//! query and every request waits for its answer, without blocking a thread. A request
//! that is cancelled while its query runs (a client gone away) hands the query over
//! to one of the requests waiting for it, so nobody is left hanging.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use kvcore::{MemoryStore, SetOptions, StoreBuilder, StoreExt};

/// Stands in for a database: each query takes a while and is counted.
#[derive(Default)]
struct Database {
    queries: AtomicU32,
}

impl Database {
    async fn user_name(&self, id: u32) -> String {
        self.queries.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(50)).await;
        format!("user-{id}")
    }
}

/// A request handler: the cached name, or one query for everyone who asks at once.
async fn handle(cache: &MemoryStore<String>, db: &Database, id: u32) -> kvcore::Result<String> {
    let key = format!("user:{id}");
    let opts = SetOptions::new().ttl(Duration::from_secs(300));
    cache
        .get_with_options_async(&key, opts, db.user_name(id))
        .await
}

#[tokio::main]
async fn main() -> kvcore::Result<()> {
    let cache = StoreBuilder::new().capacity(100_000).build::<String>()?;
    let db = Arc::new(Database::default());

    let requests: Vec<_> = (0..100)
        .map(|_| {
            let (cache, db) = (cache.clone(), Arc::clone(&db));
            tokio::spawn(async move { handle(&cache, &db, 7).await })
        })
        .collect();
    for request in requests {
        assert_eq!(request.await.expect("the task ran")?, "user-7");
    }
    let queries = db.queries.load(Ordering::SeqCst);
    println!("100 concurrent requests for user 7: {queries} query");
    assert_eq!(queries, 1);

    // The first request for user 8 is cancelled mid-query; a waiting one takes over.
    let first = {
        let (cache, db) = (cache.clone(), Arc::clone(&db));
        tokio::spawn(async move { handle(&cache, &db, 8).await })
    };
    tokio::time::sleep(Duration::from_millis(10)).await; // its query is running
    let second = {
        let (cache, db) = (cache.clone(), Arc::clone(&db));
        tokio::spawn(async move { handle(&cache, &db, 8).await })
    };
    tokio::time::sleep(Duration::from_millis(10)).await; // it waits for the first
    first.abort();
    let name = second.await.expect("the task ran")?;
    println!("user 8 after a cancelled request: {name}");
    assert_eq!(name, "user-8");
    assert_eq!(
        db.queries.load(Ordering::SeqCst),
        3,
        "the second request queried again"
    );
    Ok(())
}
