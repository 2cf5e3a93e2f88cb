//! Unit tests of the persistent store as a whole: what a reopen recovers.

use super::*;
use crate::{ManualClock, StoreBuilder};

fn open_at(dir: &Path, clock: &ManualClock, opts: PersistOptions) -> PersistentStore<String> {
    StoreBuilder::new()
        .clock(clock.clone())
        .open(dir, opts)
        .unwrap()
}

#[test]
fn survives_reopen_with_deletes_clear_and_ttls() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new();
    let opts = PersistOptions::default();
    {
        let s = open_at(dir.path(), &clock, opts);
        s.set("gone", "x".into(), SetOptions::new()).unwrap();
        s.clear().unwrap();
        s.set("a", "1".into(), SetOptions::new()).unwrap();
        s.set("b", "2".into(), SetOptions::new()).unwrap();
        s.delete("b").unwrap();
        s.set(
            "t",
            "3".into(),
            SetOptions::new().ttl(Duration::from_secs(10)),
        )
        .unwrap();
        s.incr("a", 4).unwrap();
    }
    clock.advance(Duration::from_secs(5));
    {
        let s = open_at(dir.path(), &clock, opts);
        assert_eq!(s.get("a").as_deref(), Some("5"));
        assert_eq!(s.get("b"), None);
        assert_eq!(s.get("gone"), None);
        assert_eq!(s.ttl("t"), Some(Some(Duration::from_secs(5))));
        s.compact().unwrap();
        s.set("after", "4".into(), SetOptions::new()).unwrap();
    }
    clock.advance(Duration::from_secs(5)); // time spent down counts
    let s = open_at(dir.path(), &clock, opts);
    assert_eq!(s.get("t"), None);
    assert_eq!(s.get("after").as_deref(), Some("4"));
    assert_eq!(s.len(), 2);
    assert_eq!(journals(dir.path()).unwrap().len(), 1);
}

#[test]
fn a_second_open_is_refused_with_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new();
    let _s = open_at(dir.path(), &clock, PersistOptions::default());
    let err = StoreBuilder::new()
        .open::<String>(dir.path(), PersistOptions::default())
        .unwrap_err();
    match err {
        Error::Locked { pid, .. } => assert_eq!(pid, Some(std::process::id())),
        other => panic!("{other}"),
    }
    assert_eq!(
        holder(dir.path()),
        Some(Holder {
            pid: Some(std::process::id())
        })
    );
}
