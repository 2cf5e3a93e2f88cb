#!/usr/bin/env bash
# benches/http/load.sh [SECONDS]
#
# GET and PUT requests per second and latency (p50, p99) of kvserver on loopback,
# next to axum-ceiling (axum answering a constant on the same routes): the ceiling of
# the HTTP stack on this machine. Each server listens on a free 127.0.0.1 port and is
# stopped when the script ends. Needs wrk (Debian: apt-get install -y wrk).
#
# Environment: KV_LOAD_CONNECTIONS (default 32), KV_LOAD_THREADS (wrk threads,
# default 1), KV_LOAD_KEYS (key space, default 10000), CARGO_TARGET_DIR.
set -euo pipefail

duration=${1:-10}
connections=${KV_LOAD_CONNECTIONS:-32}
threads=${KV_LOAD_THREADS:-1}
export KV_LOAD_KEYS=${KV_LOAD_KEYS:-10000}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${CARGO_TARGET_DIR:-$root/target}/release

command -v wrk >/dev/null || { echo "wrk not found: apt-get install -y wrk" >&2; exit 1; }
(cd "$root" && cargo build --release -q -p kvserver -p kv-benches --bin kvserver --bin axum-ceiling)

# shellcheck source=../lib.sh
. "$root/benches/lib.sh"

# run NAME METHOD PORT: one wrk run; prints a table row, remembers requests/s.
declare -A rps
run() {
  local name=$1 method=$2 port=$3 script
  script=$here/$(tr '[:upper:]' '[:lower:]' <<<"$method").lua
  local out r p50 p99 errors
  out=$(wrk -t"$threads" -c"$connections" -d"${duration}s" -s "$script" "http://127.0.0.1:$port" | grep '^RESULT')
  read -r _ r p50 p99 errors <<<"$out"
  rps[$name/$method]=$r
  local ceiling=${rps[axum-ceiling/$method]:-}
  local ratio="—"
  if [[ -n $ceiling && $name != axum-ceiling ]]; then
    ratio=$(awk -v a="$r" -v b="$ceiling" 'BEGIN { printf "%.0f%%", 100 * a / b }')
  fi
  echo "| $name | $method | $r | $p50 | $p99 | $errors | $ratio |"
}

# start FUNCTION: runs FUNCTION PORT in the background on a free port, sets $port.
# Each FUNCTION execs its server, so the PID remembered is the server's own.
start() {
  port=$(free_port)
  RUST_LOG=warn "$1" "$port" >/dev/null 2>&1 &
  pids+=($!)
  wait_port "$port"
}

echo "wrk: $threads thread(s), $connections connections, ${duration}s a run, $KV_LOAD_KEYS keys"
echo
echo "| server | method | requests/s | p50 ms | p99 ms | errors | of ceiling |"
echo "|---|---|---|---|---|---|---|"

ceiling() { exec "$bin/axum-ceiling" "127.0.0.1:$1"; }
start ceiling
run axum-ceiling PUT "$port"
run axum-ceiling GET "$port"

memory() { exec "$bin/kvserver" --no-persist --listen "127.0.0.1:$1"; }
start memory
run "kvserver --no-persist" PUT "$port"   # also loads every key the GETs read
run "kvserver --no-persist" GET "$port"

durable() { exec "$bin/kvserver" --data-dir "$data" --fsync everysec --listen "127.0.0.1:$1"; }
start durable
run "kvserver --fsync everysec" PUT "$port"
run "kvserver --fsync everysec" GET "$port"
