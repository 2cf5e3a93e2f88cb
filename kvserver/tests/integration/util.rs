//! Helpers shared by the kvserver integration tests. Keep this small and generic:
//! helpers of one suite belong in that suite's own module.

use clap::Parser;
use kvserver::Config;

#[macro_use]
pub mod redis;

/// A [`Config`] from `args`, as if given on the command line after `kvserver`.
///
/// Nothing is added: pass `--no-persist` or `--data-dir TEMPDIR` so that a test never
/// touches `./kvdata`.
pub fn config(args: &[&str]) -> Config {
    let mut argv = vec!["kvserver"];
    argv.extend_from_slice(args);
    Config::try_parse_from(argv).unwrap_or_else(|e| panic!("bad test flags {args:?}: {e}"))
}
