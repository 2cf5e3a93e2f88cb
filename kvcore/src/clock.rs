//! Time, behind one seam.
//!
//! Every expiry decision in kvcore asks a [`Clock`] for the time; nothing else reads
//! the system clock. Production code uses [`SystemClock`]; tests — ours and yours —
//! use [`ManualClock`] and move time forward explicitly, so no test has to sleep.
//!
//! Times are wall-clock (`SystemTime`) so that deadlines can be persisted as absolute
//! instants and time spent while a process is down still counts.
//!
//! # Reads ask the cheap clock first
//!
//! A precise reading of the system clock is not free: on x86 the kernel's
//! `clock_gettime` orders the time-stamp counter read with a fence, which also stops
//! the processor from overlapping one lookup's cache misses with the next one's. So a
//! read of a key with a deadline first asks [`Clock::coarse_now`] — for
//! [`SystemClock`] on Linux, `CLOCK_REALTIME_COARSE`, the time at the kernel's last
//! tick, read without a fence — which bounds the current time from both sides. A
//! deadline past the upper bound means the key is live; one before the lower bound
//! means it is dead; only a deadline in between, within a few milliseconds of now,
//! costs a precise reading. Writes always read the precise clock.

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

    /// A cheaper reading for hot paths: `(earliest, slack)` such that the current time
    /// lies between `earliest` and `earliest + slack`, both included. A store decides
    /// from it alone when a deadline is clearly ahead or behind, and asks
    /// [`now`](Clock::now) otherwise.
    ///
    /// The default is `now()` with no slack, so every decision is exact; clocks whose
    /// precise reading costs more than a cheaper, bounded one override it.
    ///
    /// ```
    /// use kvcore::{Clock, ManualClock, SystemClock};
    /// use std::time::Duration;
    ///
    /// let manual = ManualClock::new();
    /// assert_eq!(manual.coarse_now(), (manual.now(), Duration::ZERO));
    ///
    /// let (earliest, slack) = SystemClock.coarse_now();
    /// assert!(earliest <= SystemClock.now());
    /// assert!(slack < Duration::from_secs(1));
    /// ```
    fn coarse_now(&self) -> (SystemTime, Duration) {
        (self.now(), Duration::ZERO)
    }
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> SystemTime {
        (**self).now()
    }

    fn coarse_now(&self) -> (SystemTime, Duration) {
        (**self).coarse_now()
    }
}

/// The operating system's wall clock.
///
/// [`now`](Clock::now) is `SystemTime::now()`. On Linux,
/// [`coarse_now`](Clock::coarse_now) is `CLOCK_REALTIME_COARSE` (the time at the
/// kernel's last tick, a few nanoseconds to read) with a slack of four times that
/// clock's resolution and at least 20 ms: the kernel updates it every tick, 1 to 10 ms.
/// Should the kernel's timekeeping stall for longer than the slack — a virtual machine
/// whose timekeeping CPU is descheduled that long — a key may be served for that much
/// longer past its deadline. Elsewhere `coarse_now` is the precise reading.
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

    fn coarse_now(&self) -> (SystemTime, Duration) {
        let (earliest, slack) = system_coarse();
        (from_nanos(earliest), Duration::from_nanos(slack))
    }
}

/// [`SystemClock::coarse_now`] in nanoseconds since the Unix epoch.
#[cfg(target_os = "linux")]
fn system_coarse() -> (u64, u64) {
    use rustix::time::{ClockId, clock_gettime};
    (
        timespec_nanos(clock_gettime(ClockId::RealtimeCoarse)),
        *COARSE_SLACK,
    )
}

#[cfg(not(target_os = "linux"))]
fn system_coarse() -> (u64, u64) {
    (to_nanos(SystemTime::now()), 0)
}

/// How far the coarse clock may lag the precise one, in nanoseconds (see
/// [`SystemClock`]).
#[cfg(target_os = "linux")]
static COARSE_SLACK: std::sync::LazyLock<u64> = std::sync::LazyLock::new(|| {
    use rustix::time::{ClockId, clock_getres};
    let resolution = timespec_nanos(clock_getres(ClockId::RealtimeCoarse));
    resolution.saturating_mul(4).max(20_000_000)
});

/// A `timespec` since the Unix epoch in nanoseconds, saturating at both ends.
#[cfg(target_os = "linux")]
fn timespec_nanos(ts: rustix::time::Timespec) -> u64 {
    let Ok(secs) = u64::try_from(ts.tv_sec) else {
        return 0;
    };
    let nanos = u64::try_from(ts.tv_nsec).unwrap_or(0).min(999_999_999);
    secs.saturating_mul(1_000_000_000).saturating_add(nanos)
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

/// A store's clock, read in nanoseconds since the Unix epoch.
///
/// The two clocks kvcore ships are read directly — no dynamic call, no detour through
/// `SystemTime` — because a read of a key with a deadline asks for the time, and at a
/// million keys every instruction on that path delays the next lookup's cache misses.
/// Any other [`Clock`] is called through the trait.
#[derive(Debug, Clone)]
pub(crate) enum Timer {
    System,
    Manual(Arc<AtomicU64>),
    Other(Arc<dyn Clock>),
}

impl Timer {
    /// Reads `clock` the cheapest way its type allows.
    pub(crate) fn new<C: Clock + 'static>(clock: C) -> Timer {
        let any: &dyn std::any::Any = &clock;
        if any.is::<SystemClock>() {
            Timer::System
        } else if let Some(manual) = any.downcast_ref::<ManualClock>() {
            Timer::Manual(Arc::clone(&manual.nanos))
        } else {
            Timer::Other(Arc::new(clock))
        }
    }

    /// [`Clock::now`], in nanoseconds.
    #[inline]
    pub(crate) fn now(&self) -> u64 {
        match self {
            Timer::System => to_nanos(SystemTime::now()),
            Timer::Manual(nanos) => nanos.load(Ordering::Acquire),
            Timer::Other(clock) => to_nanos(clock.now()),
        }
    }

    /// [`Clock::coarse_now`], in nanoseconds: the earliest the time can be, and how
    /// much later it may be.
    #[inline]
    pub(crate) fn coarse_now(&self) -> (u64, u64) {
        match self {
            Timer::System => system_coarse(),
            Timer::Manual(nanos) => (nanos.load(Ordering::Acquire), 0),
            Timer::Other(clock) => {
                let (earliest, slack) = clock.coarse_now();
                let slack = u64::try_from(slack.as_nanos()).unwrap_or(u64::MAX);
                (to_nanos(earliest), slack)
            }
        }
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
    fn timers_read_the_clock_they_were_made_from() {
        let manual = ManualClock::new();
        let timer = Timer::new(manual.clone());
        assert!(matches!(timer, Timer::Manual(_)));
        manual.advance(Duration::from_secs(3));
        assert_eq!(timer.now(), to_nanos(manual.now()));
        assert_eq!(timer.coarse_now(), (to_nanos(manual.now()), 0));

        // A clock kvcore does not know is called through the trait.
        let other = Timer::new(Arc::new(manual.clone()));
        assert!(matches!(other, Timer::Other(_)));
        manual.advance(Duration::from_secs(1));
        assert_eq!(other.now(), timer.now());
        assert_eq!(other.coarse_now(), timer.coarse_now());
    }

    #[test]
    fn the_system_timers_coarse_reading_brackets_the_precise_one() {
        let timer = Timer::new(SystemClock);
        assert!(matches!(timer, Timer::System));
        for _ in 0..1000 {
            let before = timer.now();
            let (earliest, slack) = timer.coarse_now();
            let after = timer.now();
            assert!(earliest <= after, "the coarse reading is never ahead");
            assert!(
                before <= earliest + slack,
                "nor behind by more than its slack"
            );
        }
        let (earliest, slack) = SystemClock.coarse_now();
        assert!(earliest <= SystemClock.now());
        assert!(slack < Duration::from_secs(1));
    }

    #[test]
    fn nanos_round_trip() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 123);
        assert_eq!(UNIX_EPOCH + Duration::from_nanos(to_nanos(t)), t);
        assert_eq!(to_nanos(UNIX_EPOCH - Duration::from_secs(1)), 0);
    }
}
