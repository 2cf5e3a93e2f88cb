//! `kvcli`: offline commands over a kv data directory. All the logic is in the library.

use std::process::ExitCode;

use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    // kvcore reports recoveries (a torn journal tail dropped) as warnings.
    let filter = EnvFilter::try_from_env("KVCLI_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .init();
    let args = kvcli::Args::parse_with_help();
    kvcli::run(&args).into()
}
