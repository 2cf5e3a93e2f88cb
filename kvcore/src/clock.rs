//! Time, behind one seam.
//!
//! Every expiry decision in kvcore asks a [`Clock`] for the time; nothing else reads
//! the system clock. Production code uses [`SystemClock`]; tests — ours and yours —
//! use [`ManualClock`] and move time forward explicitly, so no test has to sleep.
//!
//! Times are wall-clock (`SystemTime`) so that deadlines can be persisted as absolute
//! instants and time spent while a process is down still counts.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of the current time.
///
/// Implementations must be cheap to call: a store asks on every read of a key that has a
/// time-to-live.
///
/// ```
/// use kvcore::{Clock, ManualClock};
/// use std::time::Duration;
///
/// let clock = ManualClock::new();
/// let before = clock.now();
/// clock.advance(Duration::from_secs(5));
/// assert_eq!(clock.now().duration_since(before).unwrap(), Duration::from_secs(5));
/// ```
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current wall-clock time.
    fn now(&self) -> SystemTime;
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> SystemTime {
        (**self).now()
    }
}

/// The operating system's wall clock.
///
/// ```
/// use kvcore::{Clock, SystemClock};
/// assert!(SystemClock.now() > std::time::UNIX_EPOCH);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that moves only when told to.
///
/// Clones share one time, so a test can keep a clone and advance the clock a store
/// was built with.
///
/// ```
/// use kvcore::{ManualClock, Store, StoreBuilder};
/// use std::time::Duration;
///
/// let clock = ManualClock::new();
/// let store = StoreBuilder::new()
///     .default_ttl(Duration::from_secs(60))
///     .clock(clock.clone())
///     .build::<String>()?;
/// store.set("k", "v".to_string(), Default::default())?;
/// clock.advance(Duration::from_secs(59));
/// assert!(store.contains("k"));
/// clock.advance(Duration::from_secs(1));
/// assert!(!store.contains("k"));
/// # Ok::<(), kvcore::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock {
    nanos: Arc<AtomicU64>,
}

impl ManualClock {
    /// The instant a [`ManualClock::new`] clock starts at: 2020-01-01T00:00:00Z.
    pub const START: Duration = Duration::from_secs(1_577_836_800);

    /// A clock standing at [`ManualClock::START`].
    pub fn new() -> Self {
        Self::starting_at(UNIX_EPOCH + Self::START)
    }

    /// A clock standing at `time` (clamped to the Unix epoch if earlier).
    pub fn starting_at(time: SystemTime) -> Self {
        ManualClock {
            nanos: Arc::new(AtomicU64::new(to_nanos(time))),
        }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        // fetch_update saturates instead of wrapping on absurd advances.
        let _ = self
            .nanos
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                Some(n.saturating_add(by))
            });
    }

    /// Sets the clock to `time`, forwards or backwards.
    pub fn set(&self, time: SystemTime) {
        self.nanos.store(to_nanos(time), Ordering::Release);
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_nanos(self.nanos.load(Ordering::Acquire))
    }
}

/// Nanoseconds since the Unix epoch, saturating at both ends.
pub(crate) fn to_nanos(time: SystemTime) -> u64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(d) => u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
        Err(_) => 0,
    }
}

/// The time `nanos` nanoseconds after the Unix epoch.
pub(crate) fn from_nanos(nanos: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_clones_share_time() {
        let a = ManualClock::new();
        let b = a.clone();
        a.advance(Duration::from_millis(1500));
        assert_eq!(
            b.now(),
            UNIX_EPOCH + ManualClock::START + Duration::from_millis(1500)
        );
    }

    #[test]
    fn manual_clock_set_and_saturate() {
        let c = ManualClock::new();
        c.set(UNIX_EPOCH + Duration::from_secs(10));
        assert_eq!(to_nanos(c.now()), 10_000_000_000);
        c.advance(Duration::MAX);
        assert_eq!(to_nanos(c.now()), u64::MAX);
    }

    #[test]
    fn nanos_round_trip() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 123);
        assert_eq!(UNIX_EPOCH + Duration::from_nanos(to_nanos(t)), t);
        assert_eq!(to_nanos(UNIX_EPOCH - Duration::from_secs(1)), 0);
    }
}
