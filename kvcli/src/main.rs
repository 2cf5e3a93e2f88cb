//! `kvcli`: offline commands over a kv data directory. All the logic is in the library.

use std::io::IsTerminal;
use std::process::ExitCode;

use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    // kvcore reports recoveries (a torn journal tail dropped) as warnings.
    let filter = EnvFilter::try_from_env("KVCLI_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    // Colour only on a terminal, and not when NO_COLOR is set to anything but "".
    let ansi = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    tracing_subscriber::fmt()
        .with_ansi(ansi)
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .init();
    let args = kvcli::Args::parse_with_help();
    kvcli::run(&args).into()
}
