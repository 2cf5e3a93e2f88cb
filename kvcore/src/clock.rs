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
//! costs a precise reading. Single-key writes decide whether the key they find is
//! live the same way. A new deadline ends no earlier than its TTL after the write:
//! it counts from the cheap reading's upper bound when the slack is at most a
//! thousandth of the TTL, so that a key lives at most a thousandth of its TTL longer
//! (with [`SystemClock`]'s slack of 20 ms or more, for TTLs of at least 20 s), and from
//! a precise reading otherwise. A [`ManualClock`] has no slack: every deadline is
//! exact.
//!
//! Even the cheap reading is a call into the kernel's vDSO, and in a store much larger
//! than the processor's caches it still costs a read of a key with a deadline a
//! noticeable share of its time. [`TickingClock`] trades a background thread for a
//! cheaper one: the thread stores the time in memory every millisecond, and a read
//! loads it.

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

/// The system clock, with a cheap reading kept up to date by a background thread.
///
/// [`now`](Clock::now) is `SystemTime::now()`, as for [`SystemClock`].
/// [`coarse_now`](Clock::coarse_now) is the time a thread of the clock's own stored
/// at its last tick, one load from memory, with a slack of the tick period plus 20 ms.
/// It is for large stores with TTLs, where even [`SystemClock`]'s cheap reading, a
/// call into the kernel's vDSO, takes a noticeable share of a read (see the
/// repository's `docs/PERFORMANCE.md`).
///
/// The 20 ms are what a late wake-up of the thread may add. Should the thread be kept
/// from running for longer than the slack — a starved machine, a process stopped and
/// resumed — a read of a key within that much of its deadline may return it that much
/// late; keys further from their deadline are not affected. Where a key must never be
/// served past its deadline by more than the kernel's own coarse clock allows, keep
/// [`SystemClock`].
///
/// Clones share the thread, which stops, and is joined, when the last clone (stores
/// hold one too) is dropped. A child process made by `fork` without `exec` has no
/// such thread, so its clock would stand still: start clocks after forking.
///
/// ```
/// use kvcore::{Clock, Store, StoreBuilder, TickingClock};
/// use std::time::Duration;
///
/// let clock = TickingClock::new()?;
/// // The time at the cheap reading is within [earliest, earliest + slack]: no later
/// // than a precise reading after it, no earlier than one before it.
/// let before = clock.now();
/// let (earliest, slack) = clock.coarse_now();
/// let after = clock.now();
/// assert!(earliest <= after && before <= earliest + slack);
///
/// let store = StoreBuilder::new()
///     .default_ttl(Duration::from_secs(60))
///     .clock(clock)
///     .build::<String>()?;
/// store.set("k", "v".to_string(), Default::default())?;
/// assert!(store.contains("k"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct TickingClock {
    ticker: Arc<Ticker>,
}

/// What a [`TickingClock`]'s thread shares with the clock.
#[derive(Debug)]
pub(crate) struct Tick {
    /// The time at the last tick, in nanoseconds since the Unix epoch.
    nanos: AtomicU64,
    /// The cheap reading's slack, in nanoseconds.
    slack: u64,
    /// Set when the last clone of the clock is dropped.
    stop: parking_lot::Mutex<bool>,
    wake: parking_lot::Condvar,
}

#[derive(Debug)]
struct Ticker {
    tick: Arc<Tick>,
    period: Duration,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TickingClock {
    /// The tick period of [`TickingClock::new`].
    pub const DEFAULT_PERIOD: Duration = Duration::from_millis(1);

    /// How late beyond its period the thread may wake before the cheap reading's
    /// slack no longer covers it.
    pub const LATENESS: Duration = Duration::from_millis(20);

    /// Starts a clock that ticks every millisecond.
    ///
    /// # Errors
    ///
    /// If the operating system refuses to start the thread.
    pub fn new() -> std::io::Result<Self> {
        Self::with_period(Self::DEFAULT_PERIOD)
    }

    /// Starts a clock that ticks every `period`, from 1 µs to 1 s.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a period outside that range; any error the operating system
    /// gives for starting the thread.
    pub fn with_period(period: Duration) -> std::io::Result<Self> {
        if !(Duration::from_micros(1)..=Duration::from_secs(1)).contains(&period) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("a tick period must be from 1 µs to 1 s, not {period:?}"),
            ));
        }
        let slack = period.saturating_add(Self::LATENESS);
        let tick = Arc::new(Tick {
            nanos: AtomicU64::new(to_nanos(SystemTime::now())),
            slack: u64::try_from(slack.as_nanos()).unwrap_or(u64::MAX),
            stop: parking_lot::Mutex::new(false),
            wake: parking_lot::Condvar::new(),
        });
        let thread = std::thread::Builder::new()
            .name("kvcore-clock".into())
            .spawn({
                let tick = Arc::clone(&tick);
                move || {
                    let mut stop = tick.stop.lock();
                    while !*stop {
                        tick.wake.wait_for(&mut stop, period);
                        tick.nanos
                            .store(to_nanos(SystemTime::now()), Ordering::Relaxed);
                    }
                }
            })?;
        Ok(TickingClock {
            ticker: Arc::new(Ticker {
                tick,
                period,
                thread: Some(thread),
            }),
        })
    }

    /// How often the thread stores the time.
    pub fn period(&self) -> Duration {
        self.ticker.period
    }
}

impl Tick {
    /// The cheap reading in nanoseconds: the last tick's time and the slack.
    #[inline]
    fn coarse_nanos(&self) -> (u64, u64) {
        (self.nanos.load(Ordering::Relaxed), self.slack)
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        *self.tick.stop.lock() = true;
        self.tick.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            // The thread only loops, sleeps and stores; it has nothing to panic on.
            let _ = thread.join();
        }
    }
}

impl Clock for TickingClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    fn coarse_now(&self) -> (SystemTime, Duration) {
        let (earliest, slack) = self.ticker.tick.coarse_nanos();
        (from_nanos(earliest), Duration::from_nanos(slack))
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

/// A store's clock, read in nanoseconds since the Unix epoch.
///
/// The clocks kvcore ships are read directly — no dynamic call, no detour through
/// `SystemTime` — because a read of a key with a deadline asks for the time, and at a
/// million keys every instruction on that path delays the next lookup's cache misses.
/// Any other [`Clock`] is called through the trait.
#[derive(Debug, Clone)]
pub(crate) enum Timer {
    System,
    Manual(Arc<AtomicU64>),
    /// The tick, read directly, and the clock, which keeps its thread running.
    Ticking {
        tick: Arc<Tick>,
        _clock: TickingClock,
    },
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
        } else if let Some(ticking) = any.downcast_ref::<TickingClock>() {
            Timer::Ticking {
                tick: Arc::clone(&ticking.ticker.tick),
                _clock: ticking.clone(),
            }
        } else {
            Timer::Other(Arc::new(clock))
        }
    }

    /// [`Clock::now`], in nanoseconds.
    #[inline]
    pub(crate) fn now(&self) -> u64 {
        match self {
            Timer::Manual(nanos) => nanos.load(Ordering::Acquire),
            Timer::System | Timer::Ticking { .. } => to_nanos(SystemTime::now()),
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
            Timer::Ticking { tick, .. } => tick.coarse_nanos(),
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

    /// Checks, a thousand times over, that `timer`'s coarse reading bounds a precise
    /// reading taken on either side of it.
    fn assert_coarse_brackets_precise(timer: &Timer) {
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
    }

    #[test]
    fn the_system_timers_coarse_reading_brackets_the_precise_one() {
        let timer = Timer::new(SystemClock);
        assert!(matches!(timer, Timer::System));
        assert_coarse_brackets_precise(&timer);
        let (earliest, slack) = SystemClock.coarse_now();
        assert!(earliest <= SystemClock.now());
        assert!(slack < Duration::from_secs(1));
    }

    #[test]
    fn the_ticking_timers_coarse_reading_brackets_the_precise_one_and_moves() {
        let clock = TickingClock::new().unwrap();
        let timer = Timer::new(clock.clone());
        assert!(matches!(timer, Timer::Ticking { .. }));
        let (first, slack) = timer.coarse_now();
        assert_eq!(
            slack,
            u64::try_from((clock.period() + TickingClock::LATENESS).as_nanos()).unwrap()
        );
        assert_coarse_brackets_precise(&timer);
        // The thread ticks: wait for it, not for any TTL.
        let give_up = std::time::Instant::now() + Duration::from_secs(10);
        while timer.coarse_now().0 == first {
            assert!(
                std::time::Instant::now() < give_up,
                "the clock never ticked"
            );
            std::thread::sleep(clock.period());
        }
    }

    #[test]
    fn a_ticking_clocks_thread_ends_with_its_last_clone() {
        let clock = TickingClock::with_period(Duration::from_secs(1)).unwrap();
        let tick = Arc::downgrade(&clock.ticker.tick);
        let timer = Timer::new(clock.clone());
        drop(clock);
        assert!(tick.upgrade().is_some(), "a timer keeps the thread running");
        // Dropping the last clone wakes the thread at once and joins it, so its share
        // of the tick is gone when the drop returns, a second before its next tick.
        drop(timer);
        assert!(tick.upgrade().is_none());
    }

    #[test]
    fn ticking_clock_periods_out_of_range_are_refused() {
        for period in [
            Duration::ZERO,
            Duration::from_nanos(999),
            Duration::from_secs(2),
        ] {
            let err = TickingClock::with_period(period).unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
            assert!(err.to_string().contains("1 µs to 1 s"), "{err}");
        }
        assert!(TickingClock::with_period(Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn nanos_round_trip() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 123);
        assert_eq!(UNIX_EPOCH + Duration::from_nanos(to_nanos(t)), t);
        assert_eq!(to_nanos(UNIX_EPOCH - Duration::from_secs(1)), 0);
    }
}
