//! Time-to-live values as people write and read them: seconds in, whole milliseconds
//! out. kvserver, kvcli and the Redis backend all go through these two functions, so
//! that a TTL means the same everywhere.

use std::time::Duration;

use crate::{Error, MAX_TTL, Result};

/// Parses a TTL written in seconds, fractional allowed (`0.5`, `300`), from 0.001 up to
/// [`MAX_TTL`] (ten years). Surrounding spaces are ignored.
///
/// ```
/// use std::time::Duration;
/// use kvcore::ttl::parse_seconds;
///
/// assert_eq!(parse_seconds("1.5")?, Duration::from_millis(1500));
/// assert!(parse_seconds("0").is_err());
/// assert!(parse_seconds("soon").is_err());
/// assert!(parse_seconds("315360001").is_err());
/// # Ok::<(), kvcore::Error>(())
/// ```
pub fn parse_seconds(text: &str) -> Result<Duration> {
    let max = MAX_TTL.as_secs_f64();
    let bad = || Error::InvalidSeconds {
        text: text.to_owned(),
    };
    let seconds: f64 = text.trim().parse().map_err(|_| bad())?;
    if !(0.001..=max).contains(&seconds) {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(seconds).min(MAX_TTL))
}

/// A TTL in whole milliseconds, rounded up, so that a live key never shows 0: with
/// 1 ns left it shows 1.
///
/// ```
/// use std::time::Duration;
/// use kvcore::ttl::millis;
///
/// assert_eq!(millis(Duration::from_nanos(1)), 1);
/// assert_eq!(millis(Duration::from_micros(1500)), 2);
/// assert_eq!(millis(Duration::from_millis(1500)), 1500);
/// assert_eq!(millis(Duration::ZERO), 0);
/// ```
pub fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ManualClock, SetOptions, Store, StoreBuilder};

    #[test]
    fn a_key_with_one_nanosecond_left_shows_one_millisecond() {
        let clock = ManualClock::new();
        let store = StoreBuilder::new()
            .clock(clock.clone())
            .build::<u64>()
            .unwrap();
        store
            .set("k", 1, SetOptions::new().ttl(Duration::from_secs(1)))
            .unwrap();
        clock.advance(Duration::from_secs(1) - Duration::from_nanos(1));
        let left = store.ttl("k").flatten().expect("live, with a TTL");
        assert_eq!(left, Duration::from_nanos(1));
        assert_eq!(millis(left), 1);
    }

    #[test]
    fn bounds_are_inclusive() {
        assert_eq!(parse_seconds(" 0.001 ").unwrap(), Duration::from_millis(1));
        assert_eq!(parse_seconds("315360000").unwrap(), MAX_TTL);
        assert!(parse_seconds("0.0009").is_err());
        assert!(parse_seconds("-1").is_err());
        assert!(parse_seconds("NaN").is_err());
        assert!(parse_seconds("inf").is_err());
    }
}
