#!/usr/bin/env bash
# benches/resp/bench.sh [ROUNDS]
#
# kvserver's Redis protocol (--resp-listen) against redis-server on this machine, in
# the same run: `redis-benchmark -t set,get -c 50 -n 200000` with -P 1 and -P 16,
# against kvserver --no-persist, kvserver with its default persistence (a data
# directory, --fsync everysec) and redis-server (no persistence, as redis-server's
# test defaults). The servers take turns within each round, so that load from
# elsewhere on the machine falls on all of them; the table shows each cell's median
# over ROUNDS rounds (default 5) and kvserver's median as a share of Redis's.
# Every server listens on a free 127.0.0.1 port and is stopped when the script ends.
# Needs redis-server and redis-benchmark (Debian: apt-get install -y redis-server).
set -euo pipefail

rounds=${1:-5}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${CARGO_TARGET_DIR:-$root/target}/release

for tool in redis-server redis-benchmark; do
  command -v "$tool" >/dev/null || { echo "$tool not found: apt-get install -y redis-server" >&2; exit 1; }
done
(cd "$root" && cargo build --release -q -p kvserver --bin kvserver)

# shellcheck source=../lib.sh
. "$root/benches/lib.sh"

declare -A port
kv_memory=$(free_port)
kv_disk=$(free_port)
redis=$(free_port)
RUST_LOG=warn "$bin/kvserver" --no-persist --listen "127.0.0.1:$(free_port)" \
  --resp-listen "127.0.0.1:$kv_memory" >/dev/null 2>&1 &
pids+=($!)
RUST_LOG=warn "$bin/kvserver" --data-dir "$data/kv" --listen "127.0.0.1:$(free_port)" \
  --resp-listen "127.0.0.1:$kv_disk" >/dev/null 2>&1 &
pids+=($!)
redis-server --bind 127.0.0.1 --port "$redis" --save '' --appendonly no \
  --dir "$data" >/dev/null 2>&1 &
pids+=($!)
port[kvserver --no-persist]=$kv_memory
port[kvserver (data dir, everysec)]=$kv_disk
port[redis-server]=$redis
servers=("kvserver --no-persist" "kvserver (data dir, everysec)" "redis-server")
for name in "${servers[@]}"; do wait_port "${port[$name]}"; done

# One redis-benchmark run: prints "SET <rps>" and "GET <rps>".
bench() {
  redis-benchmark -p "$1" -t set,get -c 50 -n 200000 -P "$2" -q 2>/dev/null \
    | tr '\r' '\n' | awk '/requests per second/ { sub(":", "", $1); print $1, $2 }'
}

results=$(mktemp)
for round in $(seq "$rounds"); do
  for pipeline in 1 16; do
    for name in "${servers[@]}"; do
      bench "${port[$name]}" "$pipeline" | while read -r test rps; do
        echo "$name|$pipeline|$test|$rps" >>"$results"
      done
    done
  done
  echo "round $round of $rounds done" >&2
done

python3 - "$results" "${servers[@]}" <<'EOF'
import statistics, sys
rows = [line.rstrip("\n").split("|") for line in open(sys.argv[1])]
servers = sys.argv[2:]
cells = {}
for name, pipeline, test, rps in rows:
    cells.setdefault((name, pipeline, test), []).append(float(rps))
print(f"{len(next(iter(cells.values())))} rounds; requests per second, median (min–max)")
print()
print("| server | -P | SET | GET | SET of Redis | GET of Redis |")
print("|---|---|---|---|---|---|")
for pipeline in ("1", "16"):
    redis = {t: statistics.median(cells[("redis-server", pipeline, t)]) for t in ("SET", "GET")}
    for name in servers:
        out = []
        for test in ("SET", "GET"):
            v = cells[(name, pipeline, test)]
            out.append(f"{statistics.median(v):,.0f} ({min(v):,.0f}–{max(v):,.0f})")
        ratios = [
            "—" if name == "redis-server"
            else f"{statistics.median(cells[(name, pipeline, t)]) / redis[t]:.0%}"
            for t in ("SET", "GET")
        ]
        print(f"| {name} | {pipeline} | {out[0]} | {out[1]} | {ratios[0]} | {ratios[1]} |")
EOF
rm -f "$results"
