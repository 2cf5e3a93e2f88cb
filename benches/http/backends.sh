#!/usr/bin/env bash
# benches/http/backends.sh [SECONDS]
#
# GET and PUT requests per second and latency (p50, p99) of kvserver with --backend on
# loopback: over one redis-server, and over a Redis Cluster of three masters and three
# replicas, each with the local cache on (--cache-ttl 5) and, in effect, off
# (--cache-ttl 0.001: a copy is trusted for a millisecond, so reads go to Redis).
# Every server listens on free 127.0.0.1 ports and is stopped when the script ends.
# Needs wrk, redis-server and redis-cli (Debian: apt-get install -y wrk redis-server).
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

for tool in wrk redis-server redis-cli; do
  command -v "$tool" >/dev/null || { echo "$tool not found: apt-get install -y wrk redis-server" >&2; exit 1; }
done
(cd "$root" && cargo build --release -q -p kvserver --bin kvserver)

# shellcheck source=../lib.sh
. "$root/benches/lib.sh"

# A free port whose cluster bus port (+10000) is free too.
free_port() {
  python3 -c '
import socket
while True:
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]
    if p > 55535: continue
    try:
        t = socket.socket(); t.bind(("127.0.0.1", p + 10000)); t.close(); print(p); break
    except OSError: pass'
}

# redis PORT [ARGS...]: a redis-server in the background, remembered for cleanup.
redis() {
  local port=$1
  shift
  mkdir -p "$data/$port"
  redis-server --bind 127.0.0.1 --port "$port" --dir "$data/$port" --save "" \
    --appendonly no --loglevel warning "$@" >/dev/null 2>&1 &
  pids+=($!)
  wait_port "$port"
}

# run NAME METHOD PORT: one wrk run; prints a table row.
run() {
  local name=$1 method=$2 port=$3 script out r p50 p99 errors
  script=$here/$(tr '[:upper:]' '[:lower:]' <<<"$method").lua
  out=$(wrk -t"$threads" -c"$connections" -d"${duration}s" -s "$script" "http://127.0.0.1:$port" | grep '^RESULT')
  read -r _ r p50 p99 errors <<<"$out"
  echo "| $name | $method | $r | $p50 | $p99 | $errors |"
}

# kv NAME URL CACHE_TTL: a kvserver over URL; PUT (which loads every key), then GET.
kv() {
  local port
  port=$(free_port)
  RUST_LOG=warn "$bin/kvserver" --listen "127.0.0.1:$port" --backend "$2" --cache-ttl "$3" \
    >/dev/null 2>&1 &
  local pid=$!
  pids+=($pid)
  wait_port "$port"
  run "$1" PUT "$port"
  run "$1" GET "$port"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
}

single=$(free_port)
redis "$single"
cluster=()
for _ in 1 2 3 4 5 6; do
  p=$(free_port)
  redis "$p" --cluster-enabled yes --cluster-config-file "$data/nodes-$p.conf" \
    --repl-diskless-sync-delay 0
  cluster+=("127.0.0.1:$p")
done
redis-cli --cluster create "${cluster[@]}" --cluster-replicas 1 --cluster-yes >/dev/null
until redis-cli -p "${cluster[0]#*:}" cluster info | grep -q cluster_state:ok; do sleep 0.1; done
seeds=$(IFS=,; echo "${cluster[*]:0:3}")

echo "wrk: $threads thread(s), $connections connections, ${duration}s a run, $KV_LOAD_KEYS keys"
echo
echo "| backend | method | requests/s | p50 ms | p99 ms | errors |"
echo "|---|---|---|---|---|---|"
kv "one Redis, cache on" "redis://127.0.0.1:$single/0" 5
kv "one Redis, cache off" "redis://127.0.0.1:$single/0" 0.001
kv "cluster, cache on" "redis+cluster://$seeds" 5
kv "cluster, cache off" "redis+cluster://$seeds" 0.001
