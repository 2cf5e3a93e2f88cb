#!/usr/bin/env bash
# benches/run-all.sh [OUT_DIR]
#
# Every measurement docs/PERFORMANCE.md quotes, one after another (about 50 minutes
# on 2 cores), each one's output kept in OUT_DIR (default: target/bench-results):
# memory per entry, hit ratios, peer throughput (then the tables and plot of
# benches/report.py), the targets as paired ratios, persistence, HTTP load (also
# over Redis and a Redis Cluster), and the Redis protocol against redis-server.
# KV_BENCH_QUICK=1 shortens it.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
target=${CARGO_TARGET_DIR:-$root/target}
out=${1:-$target/bench-results}
mkdir -p "$out"

{
  echo "date: $(date -u +%FT%TZ)"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo none)$(git diff --quiet 2>/dev/null || echo ' (with local changes)')"
  lscpu | grep -E '^(Model name|CPU\(s\)|Thread|Core|Hypervisor)'
  echo "memory: $(free -h | awk '/^Mem:/ { print $2 }')"
  echo "kernel: $(uname -sr)"
  rustc --version
} | tee "$out/machine.txt"

cargo bench -p kv-benches --bench memory | tee "$out/memory.md"
cargo bench -p kv-benches --bench hit_ratio | tee "$out/hit_ratio.md"
cargo bench -p kv-benches --bench peers | tee "$out/peers.log"
python3 benches/report.py "$target/criterion" --plot "$out/performance-mixed.png" | tee "$out/peers.md"
cargo bench -p kv-benches --bench targets | tee "$out/targets.md"
cargo bench -p kv-benches --bench persist | tee "$out/persist.log"
benches/http/load.sh 10 | tee "$out/http.md"
benches/http/backends.sh 10 | tee "$out/http-backends.md"
benches/resp/bench.sh 5 | tee "$out/resp.md"
