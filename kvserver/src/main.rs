//! `kvserver`: an HTTP key-value service over kvcore.

use clap::Parser;

/// An HTTP key-value service over kvcore.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "KV_LISTEN", default_value = "127.0.0.1:8080")]
    listen: String,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    tracing::info!(listen = %args.listen, "kvserver starting");
    Ok(())
}
