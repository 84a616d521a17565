#!/usr/bin/env bash
# Patroni's failover on the same one-machine topology as plans/region-failover.yaml: two
# PostgreSQL 15 nodes managed by Debian's patroni with a single-node etcd, synchronous
# mode on, a client writing a row every 20 ms through a libpq multi-host endpoint
# (target_session_attrs=read-write). The leader's node "dies" (patroni and postgres
# SIGKILLed); we measure the time from the kill to the first write acknowledged again, and
# the acknowledged rows missing afterwards.
#   sudo scripts/bench-patroni.sh [ttl] [loop_wait] [retry_timeout]   (defaults: Patroni's 30 10 10)
set -euo pipefail
TTL=${1:-30} LOOP_WAIT=${2:-10} RETRY_TIMEOUT=${3:-10}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
command -v patroni >/dev/null && command -v etcd >/dev/null || { echo "apt install patroni etcd-server" >&2; exit 2; }
work=$(mktemp -d /tmp/lifeboat-patroni-XXXX); chmod 777 "$work"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
E_CLIENT=$(port) E_PEER=$(port) P1=$(port) P2=$(port) R1=$(port) R2=$(port)
# The background jobs are disowned first, so their SIGKILL is not reported as a job notice.
cleanup() { disown -a 2>/dev/null; pkill -9 -f "$work" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
etcd --name bench --data-dir "$work/etcd" --listen-client-urls "http://127.0.0.1:$E_CLIENT" \
  --advertise-client-urls "http://127.0.0.1:$E_CLIENT" --listen-peer-urls "http://127.0.0.1:$E_PEER" \
  --initial-advertise-peer-urls "http://127.0.0.1:$E_PEER" --initial-cluster "bench=http://127.0.0.1:$E_PEER" \
  >"$work/etcd.log" 2>&1 &
for node in 1 2; do
  pg=P$node; rest=R$node
  cat >"$work/node$node.yml" <<YML
scope: bench
name: node$node
restapi: { listen: "127.0.0.1:${!rest}", connect_address: "127.0.0.1:${!rest}" }
etcd3: { host: "127.0.0.1:$E_CLIENT" }
bootstrap:
  dcs:
    ttl: $TTL
    loop_wait: $LOOP_WAIT
    retry_timeout: $RETRY_TIMEOUT
    synchronous_mode: true
    postgresql: { use_pg_rewind: true, parameters: { wal_log_hints: "on" } }
  initdb: [ { encoding: UTF8 }, data-checksums ]
  pg_hba: [ "host all all 127.0.0.1/32 trust", "host replication all 127.0.0.1/32 trust", "local all all trust" ]
postgresql:
  listen: "127.0.0.1:${!pg}"
  connect_address: "127.0.0.1:${!pg}"
  data_dir: "$work/node$node/data"
  bin_dir: "$PG_BIN"
  authentication: { superuser: { username: postgres }, replication: { username: postgres } }
  parameters: { unix_socket_directories: "$work" }
YML
  chown postgres "$work/node$node.yml"
done
runuser -u postgres -- patroni "$work/node1.yml" >"$work/node1.log" 2>&1 &
sleep 8
runuser -u postgres -- patroni "$work/node2.yml" >"$work/node2.log" 2>&1 &
endpoint="host=127.0.0.1,127.0.0.1 port=$P1,$P2 user=postgres dbname=postgres target_session_attrs=read-write connect_timeout=1"
until psql "$endpoint" -qAtc "CREATE TABLE IF NOT EXISTS canary (seq int primary key, at timestamptz)" 2>/dev/null; do sleep 1; done
until [ "$(psql "$endpoint" -qAtc "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'")" = 1 ]; do sleep 1; done
# The client: one insert per 20 ms; acknowledged seqs and times are logged.
# Each line: seq, when the insert was sent, when it was acknowledged.
(seq=0; while :; do seq=$((seq+1)); sent=$(date +%s.%N); if psql "$endpoint" -qAtc "INSERT INTO canary VALUES ($seq, now())" >/dev/null 2>&1; then
  echo "$seq $sent $(date +%s.%N)" >>"$work/acks"; fi; sleep 0.02; done) &
client=$!
# Killing the leader's node is the fault, not news: no job notices for it.
disown -a
sleep 3
leader=$(curl -s "http://127.0.0.1:$R1/cluster" | python3 -c 'import json,sys; print([m["name"] for m in json.load(sys.stdin)["members"] if m["role"]=="leader"][0])')
lp=$([ "$leader" = node1 ] && echo $P1 || echo $P2)
kill_at=$(date +%s.%N)
pkill -9 -f "patroni $work/$leader.yml"; pkill -9 -f "$work/$leader/data"
# Recovered: the first write *sent after the kill* is acknowledged.
until awk -v k="$kill_at" '$2>k {found=1} END{exit !found}' "$work/acks"; do sleep 0.05; done
kill $client
first=$(awk -v k="$kill_at" '$2>k {print $3; exit}' "$work/acks")
acked_before=$(awk -v k="$kill_at" '$3<=k {print $1}' "$work/acks")
present=$(psql "$endpoint" -qAtc "SELECT seq FROM canary")
lost=$(comm -23 <(echo "$acked_before" | sort) <(echo "$present" | sort) | grep -c . || true)
awk -v f="$first" -v k="$kill_at" -v t="$TTL" -v l="$lost" 'BEGIN{printf "patroni ttl=%ss: kill -> first acknowledged write %.2f s, acknowledged rows lost %d\n", t, f-k, l}'
