//! `kvserver`: parse flags, set up logging, serve until SIGINT or SIGTERM (or, with
//! `--print-openapi`, print the OpenAPI document and exit).

use std::future::Future;
use std::io::Write;

use clap::Parser;
use kvserver::Config;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // A .env file, when present, supplies KV_* variables the environment lacks.
    let _ = dotenvy::dotenv();
    let config = Config::parse();
    if config.print_openapi {
        return print_openapi();
    }
    kvserver::logging::init();
    // Handlers are installed before anything else happens, so that a signal arriving
    // during start-up also ends in a graceful stop rather than the default action.
    let shutdown = shutdown_signal()?;
    kvserver::run(config, shutdown).await
}

/// Writes the OpenAPI document to stdout as pretty JSON, ending in a newline; this is
/// how `docs/openapi.json` is made. Nothing is opened or bound.
fn print_openapi() -> anyhow::Result<()> {
    let json = kvserver::openapi::document().to_pretty_json()?;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{json}").and_then(|()| out.flush()) {
        // A reader that stops early (`| head`) is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        written => Ok(written?),
    }
}

/// Installs the SIGINT and SIGTERM handlers now; the future resolves on either.
#[cfg(unix)]
fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        tracing::info!("shutdown signal received: finishing in-flight requests");
    })
}

/// Resolves on Ctrl-C.
#[cfg(not(unix))]
fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutdown signal received: finishing in-flight requests");
    })
}
