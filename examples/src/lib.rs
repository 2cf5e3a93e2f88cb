//! Runnable examples of kvcore; see `examples/README.md`.
