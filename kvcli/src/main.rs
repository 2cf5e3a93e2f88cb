//! `kvcli`: offline commands over a kv data directory.

use clap::Parser;
use std::path::PathBuf;

/// Offline REPL and scriptable commands over a kv data directory.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The data directory.
    #[arg(default_value = "./kvdata")]
    dir: PathBuf,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    println!("{}", args.dir.display());
    Ok(())
}
