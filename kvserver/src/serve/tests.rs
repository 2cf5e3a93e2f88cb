//! Unit tests of the accept loop's parts: back-off, error classes, idle order and
//! the limits taken from the flags.

use super::*;

#[test]
fn backoff_doubles_to_a_second_and_resets_on_success() {
    let mut b = Backoff::default();
    assert_eq!(b.succeeded(), None);
    let delays: Vec<(u64, bool)> = (0..10)
        .map(|_| b.failed())
        .map(|(d, first)| (d.as_millis() as u64, first))
        .collect();
    assert_eq!(
        delays,
        [
            (10, true),
            (20, false),
            (40, false),
            (80, false),
            (160, false),
            (320, false),
            (640, false),
            (1000, false),
            (1000, false),
            (1000, false),
        ]
    );
    // A long outage stays at the ceiling without overflowing.
    for _ in 0..100 {
        assert_eq!(b.failed(), (Backoff::MAX, false));
    }
    assert_eq!(b.succeeded(), Some(110));
    assert_eq!(b.succeeded(), None);
    // The next failure starts a new burst, from the first pause.
    assert_eq!(b.failed(), (Backoff::FIRST, true));
}

#[cfg(unix)]
#[test]
fn running_out_of_descriptors_or_memory_backs_off() {
    use rustix::io::Errno;
    for errno in [Errno::MFILE, Errno::NFILE, Errno::NOBUFS, Errno::NOMEM] {
        let e = io::Error::from_raw_os_error(errno.raw_os_error());
        assert_eq!(AcceptError::classify(&e), AcceptError::Resources, "{e}");
    }
    for errno in [Errno::CONNABORTED, Errno::CONNRESET, Errno::INTR] {
        let e = io::Error::from_raw_os_error(errno.raw_os_error());
        assert_eq!(AcceptError::classify(&e), AcceptError::Connection, "{e}");
    }
    let e = io::Error::from_raw_os_error(Errno::INVAL.raw_os_error());
    assert_eq!(AcceptError::classify(&e), AcceptError::Other);
}

#[test]
fn errors_without_an_os_code_are_classified_by_kind() {
    let e = io::Error::from(io::ErrorKind::OutOfMemory);
    assert_eq!(AcceptError::classify(&e), AcceptError::Resources);
    let e = io::Error::from(io::ErrorKind::ConnectionAborted);
    assert_eq!(AcceptError::classify(&e), AcceptError::Connection);
    let e = io::Error::other("strange");
    assert_eq!(AcceptError::classify(&e), AcceptError::Other);
}

#[test]
fn the_default_cap_keeps_descriptors_for_the_store() {
    assert_eq!(connections_for_fd_limit(Some(1024)), 960);
    assert_eq!(connections_for_fd_limit(Some(256)), 192);
    assert_eq!(connections_for_fd_limit(Some(64)), 48);
    assert_eq!(connections_for_fd_limit(Some(4)), 3);
    assert_eq!(connections_for_fd_limit(Some(1)), 1);
    assert_eq!(connections_for_fd_limit(Some(0)), 1);
    assert_eq!(connections_for_fd_limit(Some(1 << 20)), 10_000);
    assert_eq!(connections_for_fd_limit(None), 10_000);
}

#[test]
fn limits_follow_the_flags() {
    use clap::Parser;
    let config = Config::try_parse_from([
        "kvserver",
        "--header-timeout",
        "0.5",
        "--max-connections",
        "7",
        "--shutdown-timeout",
        "3",
    ])
    .unwrap();
    let limits = ConnectionLimits::from_config(&config);
    assert_eq!(
        limits,
        ConnectionLimits {
            header_timeout: Duration::from_millis(500),
            max_connections: 7,
            shutdown_timeout: Duration::from_secs(3),
        }
    );
    // A cap beyond what a semaphore can count is clamped rather than refused.
    let config =
        Config::try_parse_from(["kvserver", "--max-connections", "18446744073709551615"]).unwrap();
    assert_eq!(
        ConnectionLimits::from_config(&config).max_connections,
        Semaphore::MAX_PERMITS
    );
    // Defaults: 10 s, the derived cap, 10 s.
    let config = Config::try_parse_from(["kvserver"]).unwrap();
    let limits = ConnectionLimits::from_config(&config);
    assert_eq!(limits.header_timeout, Duration::from_secs(10));
    assert_eq!(limits.shutdown_timeout, Duration::from_secs(10));
    assert_eq!(limits.max_connections, default_max_connections());
    for bad in ["0", "-1", "many"] {
        assert!(Config::try_parse_from(["kvserver", "--max-connections", bad]).is_err());
    }
    for flag in ["--header-timeout", "--shutdown-timeout"] {
        assert!(Config::try_parse_from(["kvserver", flag, "0"]).is_err());
    }
}
