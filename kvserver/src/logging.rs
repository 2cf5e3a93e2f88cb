//! Logging for the `kvserver` binary: `tracing` lines on stderr, filtered by
//! `RUST_LOG` (default `info`), in colour only when stderr is a terminal and
//! `NO_COLOR` is unset or empty (<https://no-color.org>), so that a log written to a
//! file or a pipe carries no escape codes.

use std::ffi::OsStr;
use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Call it once, at start-up.
pub fn init() {
    let ansi = use_colour(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .init();
}

/// Whether log lines are coloured: only on a terminal, and never when `NO_COLOR` is
/// set to anything but the empty string.
///
/// ```
/// use kvserver::logging::use_colour;
/// use std::ffi::OsStr;
///
/// assert!(use_colour(true, None));
/// assert!(!use_colour(false, None));
/// assert!(!use_colour(true, Some(OsStr::new("1"))));
/// assert!(use_colour(true, Some(OsStr::new(""))));
/// ```
pub fn use_colour(stderr_is_terminal: bool, no_color: Option<&OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(OsStr::is_empty)
}
