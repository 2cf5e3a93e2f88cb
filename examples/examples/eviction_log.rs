// cargo run -p examples --example eviction_log
//! An eviction listener that writes what the cache evicts to a file.
//!
//! A small cache of recent sessions keeps the most recently used ones in memory; when
//! it is full, the least recently used session is evicted and the listener appends it
//! to a JSON Lines archive (kvcore's dataset format), from which it could be restored.
//! Deleted sessions (logouts) are not archived: the listener sees why each value left.

use std::fs::File;
use std::io::BufReader;
use std::sync::{Arc, Mutex};

use kvcore::dataset::{self, Format, Writer};
use kvcore::{JsonText, RemovalCause, SetOptions, Store, StoreBuilder};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::temp_dir().join(format!("kv-evicted-{}.jsonl", std::process::id()));
    let archive = Arc::new(Mutex::new(Writer::new(
        File::create(&path)?,
        Format::JsonLines,
    )?));

    let sink = Arc::clone(&archive);
    let sessions = StoreBuilder::new()
        .capacity(2)
        // Runs after the store's locks are released, so writing a file here does not
        // hold up other users of the cache.
        .removal_listener(move |key: &str, value: JsonText, cause| {
            if cause == RemovalCause::Evicted {
                let mut archive = sink.lock().expect("the archive lock");
                archive
                    .write(key, &value)
                    .expect("the archive takes the session");
            }
        })
        .build::<JsonText>()?;

    let session = |user: &str| JsonText::parse(&format!(r#"{{"user":"{user}"}}"#));
    sessions.set("s1", session("ana")?, SetOptions::new())?;
    sessions.set("s2", session("bo")?, SetOptions::new())?;
    sessions.get("s1"); // ana is active: bo's session is now the least recently used
    sessions.set("s3", session("cy")?, SetOptions::new())?; // full: s2 is evicted
    sessions.delete("s1")?; // a logout: removed, not archived
    sessions.set("s4", session("di")?, SetOptions::new())?;
    sessions.set("s5", session("ed")?, SetOptions::new())?; // s3 is evicted

    drop(sessions); // and with it the listener's handle on the archive
    let writer = Arc::into_inner(archive)
        .expect("nothing else holds the archive")
        .into_inner()?;
    writer.finish()?;

    let mut archived = Vec::new();
    dataset::read(
        BufReader::new(File::open(&path)?),
        Format::JsonLines,
        "archive",
        |k, v, _| {
            println!("archived {k}: {v}");
            archived.push(k);
            Ok(())
        },
    )?;
    std::fs::remove_file(&path)?;
    assert_eq!(archived, ["s2", "s3"]);
    Ok(())
}
