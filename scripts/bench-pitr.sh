#!/usr/bin/env bash
# Benchmark: lifeboat's native PostgreSQL backup/restore against pgBackRest on the same
# machine, the same database and the same kind of repository, in one run.
#
#   scripts/bench-pitr.sh [SCALE]      # default pgbench scale 70 (≈1.05 GiB)
#
# Measures (1) base backup wall time, (2) restore + WAL replay to an LSN near the end of
# ≥256 MiB of WAL written after the backup, until the server is promoted, (3) archive-push
# throughput over the same WAL segments, and lifeboat's peak RSS. Both tools use a local
# directory repository: pgBackRest's S3 driver speaks only HTTPS and the Garage server the
# tests use serves plain HTTP. Needs root (PostgreSQL runs as `postgres`), pgbackrest, pgbench.
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE=${1:-70}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
cargo build --release -q
WORK=$(mktemp -d /tmp/lifeboat-bench.XXXXXX)
chmod 777 "$WORK"
LB="$WORK/lifeboat"; cp target/release/lifeboat "$LB"; chmod 755 "$LB"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
pg() { runuser -u postgres -- "$@"; }
cleanup() {
  for d in "$WORK"/primary "$WORK"/restore-lifeboat "$WORK"/restore-pgbackrest; do
    [ -f "$d/postmaster.pid" ] && pg "$PG_BIN/pg_ctl" -D "$d" -m immediate stop >/dev/null 2>&1 || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$WORK/lb-repo" "$WORK/pgbr-repo" "$WORK/pgbr-spool" "$WORK/pgbr-log" "$WORK/walcopy"
chown -R postgres "$WORK"
cat > "$WORK/pgbackrest.conf" <<CONF
[global]
repo1-path=$WORK/pgbr-repo
compress-type=zst
process-max=2
archive-async=y
spool-path=$WORK/pgbr-spool
log-path=$WORK/pgbr-log
log-level-console=warn
start-fast=y
[bench]
pg1-path=$WORK/primary
pg1-port=$PORT
pg1-socket-path=$WORK
CONF
chown postgres "$WORK/pgbackrest.conf"
BR="pgbackrest --config=$WORK/pgbackrest.conf --stanza=bench"
seconds() { python3 -c "import time; print(time.time())"; }
elapsed() { python3 -c "print(f'{$2 - $1:.1f}')"; }
# Every timed phase starts with dirty pages written back, so neither tool pays for the
# other's (or pgbench's) writeback.
settle() { sync; sleep 2; }
peak_rss() { grep VmHWM "/proc/$1/status" 2>/dev/null | awk '{print $2}'; }

echo "==> primary with pgbench scale $SCALE"
pg "$PG_BIN/initdb" -D "$WORK/primary" -U postgres --auth=trust -k >/dev/null
cat >> "$WORK/primary/postgresql.conf" <<CONF
port = $PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$WORK'
archive_mode = on
# Both tools get every segment; a copy is kept for the archive-push benchmark.
archive_command = 'cp %p $WORK/walcopy/%f && $LB pg wal-push --repo file://$WORK/lb-repo %p && $BR archive-push %p'
max_wal_size = 4GB
checkpoint_timeout = 30min
CONF
pg "$PG_BIN/pg_ctl" -D "$WORK/primary" -l "$WORK/primary.log" -w start >/dev/null
PSQL="psql -h 127.0.0.1 -p $PORT -U postgres -qAt"
pg $BR stanza-create >/dev/null
pgbench -h 127.0.0.1 -p $PORT -U postgres -i -s "$SCALE" -q postgres 2>/dev/null
$PSQL -c "checkpoint"
SIZE=$($PSQL -c "select pg_size_pretty(pg_database_size('postgres'))")
echo "    database size: $SIZE"

echo "==> base backups"
settle; t0=$(seconds); "$LB" pg backup --repo "file://$WORK/lb-repo" --pgdata "$WORK/primary" --parallel 2 & LBPID=$!
RSS_BACKUP=0; while kill -0 $LBPID 2>/dev/null; do r=$(peak_rss $LBPID); [ -n "$r" ] && [ "$r" -gt "$RSS_BACKUP" ] && RSS_BACKUP=$r; sleep 0.1; done; wait $LBPID
t1=$(seconds); LB_BACKUP=$(elapsed $t0 $t1)
settle; t0=$(seconds); pg $BR backup --type=full >/dev/null; t1=$(seconds); BR_BACKUP=$(elapsed $t0 $t1)
echo "    lifeboat ${LB_BACKUP}s, pgBackRest ${BR_BACKUP}s"

echo "==> writing ≥256 MiB of WAL after the backups"
START_LSN=$($PSQL -c "select pg_current_wal_lsn()")
pgbench -h 127.0.0.1 -p $PORT -U postgres -n -T 600 -c 2 -j 2 postgres >/dev/null 2>&1 &
BENCH=$!
while true; do
  BYTES=$($PSQL -c "select pg_current_wal_lsn() - '$START_LSN'::pg_lsn")
  [ "${BYTES%.*}" -ge $((280 * 1024 * 1024)) ] && break
  sleep 1
done
kill $BENCH; wait $BENCH 2>/dev/null || true
TARGET_LSN=$($PSQL -c "select pg_current_wal_lsn()")
SEG=$($PSQL -c "select pg_walfile_name(pg_switch_wal())")
until [ "$($PSQL -c "select last_archived_wal >= '$SEG' from pg_stat_archiver")" = t ]; do sleep 0.5; done
WAL_MB=$(( BYTES / 1024 / 1024 ))
echo "    $WAL_MB MiB of WAL; restore target LSN $TARGET_LSN"
pg "$PG_BIN/pg_ctl" -D "$WORK/primary" -m fast stop >/dev/null

echo "==> restore + replay to $TARGET_LSN until promoted (each tool twice, alternating; best of two)"
# Alternating matters on a VM: the first writer of 1 GiB of page cache also pays the host
# for backing guest memory touched for the first time.
RPORT=$((PORT + 1))
restore_lifeboat() {
  local t0 t1
  settle; t0=$(seconds)
  "$LB" pg restore --repo "file://$WORK/lb-repo" --pgdata "$WORK/restore-lifeboat" --target-lsn "$TARGET_LSN" --start --port $RPORT --parallel 2 > "$WORK/lb-restore.out" & LBPID=$!
  local rss=0
  while kill -0 $LBPID 2>/dev/null; do r=$(peak_rss $LBPID); [ -n "$r" ] && [ "$r" -gt "$rss" ] && rss=$r; sleep 0.1; done; wait $LBPID
  echo $rss >> "$WORK/restore-rss"
  t1=$(seconds)
  sed 's/^/    lifeboat: /' "$WORK/lb-restore.out" >&2
  pg "$PG_BIN/pg_ctl" -D "$WORK/restore-lifeboat" -m immediate stop >/dev/null
  rm -rf "$WORK/restore-lifeboat" "$WORK/restore-lifeboat".*
  elapsed $t0 $t1
}
restore_pgbackrest() {
  local t0 tm t1
  settle; t0=$(seconds)
  pg $BR restore --pg1-path="$WORK/restore-pgbackrest" --type=lsn --target="$TARGET_LSN" --target-action=promote >/dev/null
  tm=$(seconds)
  printf 'port = %s\narchive_mode = off\n' $RPORT >> "$WORK/restore-pgbackrest/postgresql.auto.conf"
  pg "$PG_BIN/pg_ctl" -D "$WORK/restore-pgbackrest" -l "$WORK/pgbr-restore.log" start >/dev/null
  until [ "$(psql -h 127.0.0.1 -p $RPORT -U postgres -qAt -c 'select not pg_is_in_recovery()' 2>/dev/null)" = t ]; do sleep 0.05; done
  t1=$(seconds)
  echo "    pgBackRest: restore command $(elapsed $t0 $tm) s, recovery until promoted $(elapsed $tm $t1) s" >&2
  pg "$PG_BIN/pg_ctl" -D "$WORK/restore-pgbackrest" -m immediate stop >/dev/null
  rm -rf "$WORK/restore-pgbackrest"
  elapsed $t0 $t1
}
RSS_RESTORE=0
LB1=$(restore_lifeboat); BR1=$(restore_pgbackrest); BR2=$(restore_pgbackrest); LB2=$(restore_lifeboat)
RSS_RESTORE=$(sort -n "$WORK/restore-rss" | tail -1)
LB_RESTORE=$(python3 -c "print(min($LB1, $LB2))"); BR_RESTORE=$(python3 -c "print(min($BR1, $BR2))")
echo "    lifeboat $LB1 s / $LB2 s, pgBackRest $BR1 s / $BR2 s"

NSEG=$(ls "$WORK/walcopy" | grep -c '^[0-9A-F]\{24\}$')
echo "==> archive-push throughput over the same $NSEG segments, called one at a time as the archiver does"
PW="$WORK/primary/pg_wal"
mark_ready() {
  rm -rf "$PW/archive_status" "$PW/.lifeboat-pushed"; mkdir -p "$PW/archive_status"
  for f in "$WORK"/walcopy/*; do n=$(basename "$f"); [[ $n =~ ^[0-9A-F]{24}$ ]] || continue; cp "$f" "$PW/$n"; touch "$PW/archive_status/$n.ready"; done
  chown -R postgres "$PW"
}
push_all() {
  local t0 t1 n
  settle; t0=$(seconds)
  for f in "$WORK"/walcopy/*; do n=$(basename "$f"); [[ $n =~ ^[0-9A-F]{24}$ ]] || continue
    pg "$@" "$PW/$n"; mv "$PW/archive_status/$n.ready" "$PW/archive_status/$n.done"; done
  t1=$(seconds); elapsed $t0 $t1
}
mkdir -p "$WORK/lb-repo2" "$WORK/pgbr-repo2" "$WORK/pgbr-spool2"; chown postgres "$WORK/lb-repo2" "$WORK/pgbr-repo2" "$WORK/pgbr-spool2"
mark_ready
LB_PUSH=$(push_all "$LB" pg wal-push --parallel 2 --repo "file://$WORK/lb-repo2")
sed -i "s|^repo1-path=.*|repo1-path=$WORK/pgbr-repo2|; s|^spool-path=.*|spool-path=$WORK/pgbr-spool2|" "$WORK/pgbackrest.conf"
pg $BR --no-online stanza-create >/dev/null
mark_ready
BR_PUSH=$(push_all $BR archive-push)
echo "    lifeboat ${LB_PUSH}s, pgBackRest ${BR_PUSH}s"

python3 - "$LB_BACKUP" "$BR_BACKUP" "$LB_RESTORE" "$BR_RESTORE" "$LB_PUSH" "$BR_PUSH" "$NSEG" "$RSS_BACKUP" "$RSS_RESTORE" "$SIZE" "$WAL_MB" <<'PY'
import sys
lb_b, br_b, lb_r, br_r, lb_p, br_p = map(float, sys.argv[1:7])
nseg = int(sys.argv[7]); rss_b, rss_r = int(sys.argv[8]), int(sys.argv[9]); size, wal = sys.argv[10], sys.argv[11]
mb = nseg * 16
print(f"\n| database {size}, {wal} MiB WAL after backup | lifeboat | pgBackRest 2.45 (zst, process-max 2) | ratio |")
print("|---|---|---|---|")
print(f"| base backup | {lb_b:.1f} s | {br_b:.1f} s | {lb_b/br_b:.2f}× |")
print(f"| restore + replay to target, promoted | {lb_r:.1f} s | {br_r:.1f} s | {lb_r/br_r:.2f}× |")
print(f"| archive-push, {nseg} segments | {mb/lb_p:.0f} MiB/s | {mb/br_p:.0f} MiB/s | {br_p/lb_p:.2f}× throughput |")
print(f"| lifeboat peak RSS | backup {rss_b/1024:.0f} MB, restore {rss_r/1024:.0f} MB | | |")
PY
