//! Benchmarks of kvcore against its peers; see `benches/benches/`.
