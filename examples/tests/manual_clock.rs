// cargo test -p examples --test manual_clock
//! Testing your own TTL logic with `ManualClock`: no sleeping, exact boundaries.
//!
//! Two small types a kvcore user might write — "remember this device for ten
//! minutes" and a fixed-window rate limiter — take the store's clock as a parameter.
//! Production passes `SystemClock`; these tests pass a `ManualClock`, keep a clone, and
//! move time forward to the exact instant a TTL runs out.

use std::time::Duration;

use kvcore::{Clock, ManualClock, MemoryStore, SetOptions, Store, StoreBuilder};

const NANO: Duration = Duration::from_nanos(1);

/// Remembers which user signed in on a device, for ten minutes from sign-in.
struct RememberMe {
    devices: MemoryStore<String>,
}

impl RememberMe {
    const FOR: Duration = Duration::from_secs(10 * 60);

    fn new(clock: impl Clock + 'static) -> kvcore::Result<Self> {
        let devices = StoreBuilder::new().clock(clock).build()?;
        Ok(RememberMe { devices })
    }

    fn remember(&self, device: &str, user: &str) -> kvcore::Result<()> {
        let ten_minutes = SetOptions::new().ttl(Self::FOR);
        self.devices.set(device, user.to_owned(), ten_minutes)?;
        Ok(())
    }

    fn user_on(&self, device: &str) -> Option<String> {
        self.devices.get(device)
    }
}

/// Lets each client make at most `LIMIT` requests per one-minute window.
struct RateLimiter {
    counts: MemoryStore<i64>,
}

impl RateLimiter {
    const LIMIT: i64 = 3;
    const WINDOW: Duration = Duration::from_secs(60);

    fn new(clock: impl Clock + 'static) -> kvcore::Result<Self> {
        // `incr` on a missing key creates it with the default TTL and leaves the TTL of
        // an existing key alone: a client's window opens with its first request.
        let counts = StoreBuilder::new()
            .default_ttl(Self::WINDOW)
            .clock(clock)
            .build()?;
        Ok(RateLimiter { counts })
    }

    /// Counts a request from `client`; whether it may go ahead.
    fn allow(&self, client: &str) -> kvcore::Result<bool> {
        Ok(self.counts.incr(client, 1)? <= Self::LIMIT)
    }
}

#[test]
fn remembered_until_exactly_ten_minutes() -> kvcore::Result<()> {
    let clock = ManualClock::new();
    let remember = RememberMe::new(clock.clone())?;
    remember.remember("laptop", "alice")?;

    clock.advance(RememberMe::FOR - NANO);
    assert_eq!(remember.user_on("laptop").as_deref(), Some("alice"));
    // A TTL ends at its deadline: at exactly ten minutes the device is forgotten.
    clock.advance(NANO);
    assert_eq!(remember.user_on("laptop"), None);
    Ok(())
}

#[test]
fn reading_does_not_extend_but_signing_in_again_does() -> kvcore::Result<()> {
    let clock = ManualClock::new();
    let remember = RememberMe::new(clock.clone())?;
    remember.remember("laptop", "alice")?;
    remember.remember("phone", "alice")?;

    // At minute 5: a read of the laptop (the TTL is fixed, not sliding) and a fresh
    // sign-in on the phone, which restarts its ten minutes.
    clock.advance(Duration::from_secs(5 * 60));
    assert!(remember.user_on("laptop").is_some());
    remember.remember("phone", "alice")?;

    clock.advance(Duration::from_secs(5 * 60));
    assert_eq!(remember.user_on("laptop"), None, "the read did not extend");
    clock.advance(Duration::from_secs(5 * 60) - NANO);
    assert!(remember.user_on("phone").is_some());
    clock.advance(NANO);
    assert_eq!(remember.user_on("phone"), None, "10 min after sign-in");
    Ok(())
}

#[test]
fn rate_limit_resets_exactly_one_window_after_first_request() -> kvcore::Result<()> {
    let clock = ManualClock::new();
    let limiter = RateLimiter::new(clock.clone())?;

    assert!(limiter.allow("client-1")?); // opens the window
    clock.advance(Duration::from_secs(30));
    assert!(limiter.allow("client-1")?);
    assert!(limiter.allow("client-1")?);
    assert!(!limiter.allow("client-1")?, "the 4th is refused");

    // The window is measured from the first request, not the last.
    clock.advance(Duration::from_secs(30) - NANO);
    assert!(!limiter.allow("client-1")?);
    clock.advance(NANO);
    assert!(limiter.allow("client-1")?, "new window at 60 s");
    Ok(())
}

#[test]
fn clients_have_their_own_windows() -> kvcore::Result<()> {
    let clock = ManualClock::new();
    let limiter = RateLimiter::new(clock.clone())?;
    for _ in 0..RateLimiter::LIMIT {
        assert!(limiter.allow("busy")?);
    }
    assert!(!limiter.allow("busy")?);
    assert!(limiter.allow("quiet")?, "limits are per client");
    Ok(())
}
