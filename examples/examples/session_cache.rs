// cargo run -p examples --example session_cache
//! A login session cache: sessions end after 30 minutes without activity.
//!
//! The store's default TTL is *sliding*: every `get` restarts a session's 30 minutes,
//! so an active user stays signed in and the store itself signs out an idle one. A
//! `ManualClock` stands in for the system clock: the program runs instantly.

use std::time::Duration;

use kvcore::{ManualClock, MemoryStore, SetOptions, Store, StoreBuilder};

const IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);

struct Sessions {
    store: MemoryStore<String>, // session id → user name
}

impl Sessions {
    fn new(clock: ManualClock) -> kvcore::Result<Self> {
        let store = StoreBuilder::new()
            .default_ttl(IDLE_TIMEOUT) // every session gets 30 minutes...
            .sliding(true) // ...restarted by each read
            .clock(clock)
            .build()?;
        Ok(Sessions { store })
    }

    fn login(&self, session: &str, user: &str) -> kvcore::Result<()> {
        // No TTL given, so the store's default applies: 30 minutes, sliding.
        self.store.set(session, user.into(), SetOptions::new())?;
        Ok(())
    }

    /// The user of a live session. The lookup is activity: it keeps the session alive.
    fn lookup(&self, session: &str) -> Option<String> {
        self.store.get(session)
    }

    /// Time left if nobody uses the session. `ttl` only looks: it is not activity.
    fn time_left(&self, session: &str) -> Option<Duration> {
        self.store.ttl(session).flatten()
    }

    /// Ends a session now. Returns whether it was still live.
    fn logout(&self, session: &str) -> kvcore::Result<bool> {
        self.store.delete(session)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let clock = ManualClock::new();
    // The store gets a clone; clones share one time, so advancing ours moves its clock.
    let sessions = Sessions::new(clock.clone())?;
    let mut minute = 0;
    let mut wait = |minutes: u64| {
        clock.advance(Duration::from_secs(minutes * 60));
        minute += minutes;
        minute
    };

    sessions.login("s-alice", "alice")?;
    sessions.login("s-bob", "bob")?;
    println!("t=0   alice and bob log in");

    // Alice clicks around every 20 minutes; each lookup restarts her 30 minutes.
    for _ in 0..3 {
        let t = wait(20);
        assert_eq!(sessions.lookup("s-alice").as_deref(), Some("alice"));
        println!("t={t:<3} alice is active: still signed in");
    }

    // Bob has done nothing since t=0, so his session ended at t=30.
    assert_eq!(sessions.lookup("s-bob"), None);
    println!("t=60  bob was idle for 60 minutes: signed out");

    // Alice's last activity was t=60. Peeking at her time left does not extend it.
    let t = wait(29);
    assert_eq!(sessions.time_left("s-alice"), Some(Duration::from_secs(60)));
    println!("t={t}  alice idle for 29 minutes: 1 minute left");
    let t = wait(1);
    assert_eq!(sessions.lookup("s-alice"), None);
    println!("t={t}  alice idle for exactly 30 minutes: signed out");

    // Logging out ends a session at once; a second logout finds nothing.
    sessions.login("s-bob", "bob")?;
    assert!(sessions.logout("s-bob")?);
    assert!(!sessions.logout("s-bob")?);
    println!("t={t}  bob logs in and out again");
    Ok(())
}
