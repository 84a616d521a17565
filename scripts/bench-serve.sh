#!/usr/bin/env bash
# Benchmark of `lifeboat serve` on a real PostgreSQL journal (Debian's PostgreSQL 15,
# started here on a free loopback port and removed at the end):
#   1. webhooks: 200 deliveries/s for 30 s, 90% of them resends → webhook-to-run-started
#      p50/p99 and exactly one run per alert;
#   2. replicas: three replicas fire an every-second schedule for 1 minute undisturbed
#      (schedule lag), then for 5 minutes while one is killed (SIGKILL) every 10 s →
#      occurrences fired once, runs finished, duplicates, schedule lag under failover.
#
#   scripts/bench-serve.sh [REPLICAS_DURATION]      # default 5m
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-5m}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
cargo build --release -q
WORK=$(mktemp -d /tmp/lifeboat-bench-serve.XXXXXX)
chmod 755 "$WORK"
pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" -eq 0 ] && chown postgres "$WORK"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
cleanup() {
  pg "$PG_BIN/pg_ctl" -D "$WORK/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
pg "$PG_BIN/initdb" -D "$WORK/data" -U lifeboat --auth=trust -E UTF8 >/dev/null
# fsync stays on: the journal's durability is part of what is measured.
pg "$PG_BIN/pg_ctl" -D "$WORK/data" -l "$WORK/log" -w \
  -o "-c listen_addresses=127.0.0.1 -p $PORT -k $WORK -c max_connections=200" start >/dev/null
for db in webhooks steady replicas; do
  pg "$PG_BIN/psql" -h 127.0.0.1 -p "$PORT" -U lifeboat -d postgres -qc "CREATE DATABASE $db"
done
echo "== webhooks (PostgreSQL journal)"
target/release/lifeboat --state "postgres://lifeboat@127.0.0.1:$PORT/webhooks" bench webhooks --rate 200 --duplicates 0.9 --duration 30s
echo "== replicas, none killed (PostgreSQL journal)"
target/release/lifeboat --state "postgres://lifeboat@127.0.0.1:$PORT/steady" bench replicas --duration 60s --kill-every 0s
echo "== replicas, one killed every 10 s (PostgreSQL journal)"
target/release/lifeboat --state "postgres://lifeboat@127.0.0.1:$PORT/replicas" bench replicas --duration "$DURATION" --kill-every 10s
