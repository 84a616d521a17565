#!/usr/bin/env bash
# Benchmark: lifeboat's native PostgreSQL backup, restore and WAL archiving against
# pgBackRest's, on the same machine, database and WAL, on S3 as users run it (Garage behind
# a TLS terminator with a private CA) and on a local directory.
#
#   sudo scripts/bench-pitr.sh [--runs N] [--scale S] [--repos "s3 local"]
#
# Defaults: 3 runs, pgbench scale 70 (≈1.05 GiB), both repository kinds. Each run builds a
# primary archiving every segment to all four repositories (lifeboat and pgBackRest, S3 and
# local), then per repository kind measures: full backup; incremental backup after 5% of the
# database changed (time and bytes added to the repository); restore + replay to an LSN at
# the end of ≥256 MiB of WAL until promoted (fresh, twice each tool, alternating, the first
# split into the restore command and recovery; then a --delta restore over the first
# restore's promoted and stopped copy); archive-push
# throughput over the same segments, one archive_command call at a time with all of them
# marked ready; and the archive lag under pgbench with only that tool archiving. Peak RSS is
# GNU time's maximum resident set size (for pgBackRest, its largest process).
#
# Needs root (PostgreSQL runs as `postgres`), pgbackrest, pgbench, stunnel4 and Garage
# (scripts/test.sh builds it into ~/.cache/lifeboat/tools); missing Debian packages are
# installed. Prints the per-run figures and a summary table for docs/BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=3 SCALE=70 REPOS="s3 local"
while [ $# -gt 0 ]; do
  case $1 in
    --runs) RUNS=$2; shift 2 ;;
    --scale) SCALE=$2; shift 2 ;;
    --repos) REPOS=$2; shift 2 ;;
    *) echo "usage: $0 [--runs N] [--scale S] [--repos \"s3 local\"]" >&2; exit 2 ;;
  esac
done
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
GARAGE=${LIFEBOAT_TEST_GARAGE:-$HOME/.cache/lifeboat/tools/bin/garage}
missing=()
for p in pgbackrest:pgbackrest stunnel4:stunnel4 time:time; do
  command -v "${p%%:*}" >/dev/null || [ -x "/usr/bin/${p%%:*}" ] || missing+=("${p##*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
[[ " $REPOS " == *" s3 "* ]] && [ ! -x "$GARAGE" ] && { echo "Garage is not installed at $GARAGE: run scripts/test.sh once (it builds it), or pass --repos local" >&2; exit 2; }
cargo build --release -q
WORK=$(mktemp -d /tmp/lifeboat-bench.XXXXXX)
chmod 755 "$WORK"
LB="$WORK/lifeboat"; cp target/release/lifeboat "$LB"; chmod 755 "$LB"
RESULTS="$WORK/results.tsv"   # run, kind, figure, lifeboat, pgBackRest
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
seconds() { python3 -c "import time; print(time.time())"; }
elapsed() { python3 -c "print(f'{$2 - $1:.2f}')"; }
# Every timed phase starts with dirty pages written back, so no tool pays for another's
# (or pgbench's) writeback.
settle() { sync; sleep 2; }
PIDS=()
cleanup() {
  for d in "$WORK"/run*/primary "$WORK"/run*/restore-*; do
    [ -f "$d/postmaster.pid" ] && runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$d" -m immediate stop >/dev/null 2>&1 || true
  done
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# --- S3: Garage on loopback, behind stunnel with a private CA --------------------------
ENVS=()
if [[ " $REPOS " == *" s3 "* ]]; then
  G="$WORK/garage"; mkdir -p "$G"
  S3_PORT=$(free_port); RPC_PORT=$(free_port); TLS_PORT=$(free_port)
  cat > "$G/garage.toml" <<CONF
metadata_dir = "$G/meta"
data_dir = "$G/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$RPC_PORT"
rpc_public_addr = "127.0.0.1:$RPC_PORT"
rpc_secret = "$(openssl rand -hex 32)"
[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$S3_PORT"
root_domain = ".s3.garage.localhost"
CONF
  "$GARAGE" -c "$G/garage.toml" server > "$G/server.log" 2>&1 & PIDS+=($!)
  ga() { "$GARAGE" -c "$G/garage.toml" "$@"; }
  for _ in $(seq 100); do ga status >/dev/null 2>&1 && break; sleep 0.2; done
  NODE=$(ga node id -q | cut -d@ -f1)
  ga layout assign -z dc1 -c 10G "$NODE" >/dev/null; ga layout apply --version 1 >/dev/null
  ga key create bench >/dev/null; ga bucket create bench >/dev/null
  ga bucket allow --read --write --owner bench --key bench >/dev/null
  INFO=$(ga key info bench --show-secret)
  KEY_ID=$(sed -n 's/^Key ID: *//p' <<<"$INFO"); SECRET=$(sed -n 's/^Secret key: *//p' <<<"$INFO")
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=lifeboat bench CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" \
    -keyout "$G/ca.key" -out "$G/ca.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$G/tls.key" -out "$G/tls.csr" 2>/dev/null
  openssl x509 -req -in "$G/tls.csr" -CA "$G/ca.crt" -CAkey "$G/ca.key" -CAcreateserial -days 2 -out "$G/tls.crt" \
    -extfile <(printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n') 2>/dev/null
  chmod 644 "$G/ca.crt"
  cat > "$G/stunnel.conf" <<CONF
foreground = yes
pid =
[s3]
accept = 127.0.0.1:$TLS_PORT
connect = 127.0.0.1:$S3_PORT
cert = $G/tls.crt
key = $G/tls.key
CONF
  stunnel4 "$G/stunnel.conf" > "$G/stunnel.log" 2>&1 & PIDS+=($!)
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$TLS_PORT) 2>/dev/null && break; sleep 0.1; done
  ENVS=(AWS_ACCESS_KEY_ID="$KEY_ID" AWS_SECRET_ACCESS_KEY="$SECRET" AWS_CA_BUNDLE="$G/ca.crt")
  echo "==> Garage on 127.0.0.1:$S3_PORT behind stunnel TLS on localhost:$TLS_PORT (private CA)"
fi
pg() { runuser -u postgres -- env "${ENVS[@]}" "$@"; }
lb() { env "${ENVS[@]}" "$LB" "$@"; }
# Runs a command as postgres under GNU time; prints its wall seconds, leaves peak RSS (KiB) in $1.
timed() {
  local rss_file=$1; shift
  local t0 t1
  settle; t0=$(seconds)
  /usr/bin/time -f %M -o "$rss_file" runuser -u postgres -- env "${ENVS[@]}" "$@" > "$rss_file.out" 2> "$rss_file.err" \
    || { echo "failed: $*" >&2; cat "$rss_file.err" >&2; exit 1; }
  t1=$(seconds); elapsed "$t0" "$t1"
}
rss() { tail -1 "$1"; }
record() { printf '%s\t%s\t%s\t%s\t%s\n' "$@" >> "$RESULTS"; }

lb_repo() { # kind run purpose
  case $1 in
    s3) echo "s3://bench/r$2-lb-$3?endpoint=https://localhost:$TLS_PORT&region=garage" ;;
    local) echo "file://$WORK/run$2/lb-$3" ;;
  esac
}
br_repo_conf() { # index kind run purpose
  case $2 in
    s3) cat <<CONF
repo$1-type=s3
repo$1-path=/r$3-pgbr-$4
repo$1-s3-bucket=bench
repo$1-s3-endpoint=localhost
repo$1-storage-port=$TLS_PORT
repo$1-s3-region=garage
repo$1-s3-uri-style=path
repo$1-s3-key=$KEY_ID
repo$1-s3-key-secret=$SECRET
repo$1-storage-ca-file=$G/ca.crt
CONF
    ;;
    local) echo "repo$1-path=$WORK/run$3/pgbr-$4" ;;
  esac
}

one_run() {
  local run=$1 R="$WORK/run$1"
  mkdir -p "$R/walcopy" "$R/spool" "$R/log"
  local PORT RPORT i=0 kind; PORT=$(free_port); RPORT=$(free_port)
  local kinds=($REPOS)
  {
    echo "[global]"
    for kind in "${kinds[@]}"; do i=$((i + 1)); br_repo_conf $i "$kind" "$run" main; mkdir -p "$R/pgbr-main"; done
    cat <<CONF
compress-type=zst
process-max=2
archive-async=y
spool-path=$R/spool
log-path=$R/log
log-level-console=warn
start-fast=y
[bench]
pg1-path=$R/primary
pg1-port=$PORT
pg1-socket-path=$R
CONF
  } > "$R/pgbackrest.conf"
  for kind in "${kinds[@]}"; do mkdir -p "$R/lb-main" "$R/lb-push"; done
  chown -R postgres "$R"
  local BR="pgbackrest --config=$R/pgbackrest.conf --stanza=bench"
  local push_all_cmd="cp %p $R/walcopy/%f" idx=0
  for kind in "${kinds[@]}"; do push_all_cmd+=" && env ${ENVS[*]} $LB pg wal-push --repo '$(lb_repo "$kind" "$run" main)' %p"; done
  push_all_cmd+=" && $BR archive-push %p"

  echo "==> run $run: primary with pgbench scale $SCALE, archiving to ${kinds[*]} with both tools"
  pg "$PG_BIN/initdb" -D "$R/primary" -U postgres --auth=trust -k >/dev/null
  cat >> "$R/primary/postgresql.conf" <<CONF
port = $PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$R'
archive_mode = on
archive_command = '${push_all_cmd//\'/\'\'}'
max_wal_size = 4GB
checkpoint_timeout = 30min
CONF
  pg "$PG_BIN/pg_ctl" -D "$R/primary" -l "$R/primary.log" -w start >/dev/null
  local PSQL="psql -h 127.0.0.1 -p $PORT -U postgres -qAt"
  pg $BR stanza-create >/dev/null
  pgbench -h 127.0.0.1 -p $PORT -U postgres -i -s "$SCALE" -q postgres 2>/dev/null
  $PSQL -c "checkpoint"
  local SIZE; SIZE=$($PSQL -c "select pg_database_size('postgres')")
  record "$run" all database_bytes "$SIZE" "$SIZE"

  backups() { # figure-prefix pgbackrest-type [lifeboat flags]
    local prefix=$1 type=$2 i=0 kind tl tb; shift 2
    for kind in "${kinds[@]}"; do
      i=$((i + 1))
      tl=$(timed "$R/rss" "$LB" pg backup --repo "$(lb_repo "$kind" "$run" main)" --pgdata "$R/primary" --parallel 2 --json "$@")
      record "$run" "$kind" "${prefix}_s" "$tl" ""; record "$run" "$kind" "${prefix}_rss_kib" "$(rss "$R/rss")" ""
      record "$run" "$kind" "${prefix}_bytes" "$(python3 -c "import json; print(json.load(open('$R/rss.out'))['stored_size'])")" ""
      tb=$(timed "$R/rss" $BR backup --repo=$i --type="$type")
      record "$run" "$kind" "${prefix}_s" "" "$tb"; record "$run" "$kind" "${prefix}_rss_kib" "" "$(rss "$R/rss")"
      record "$run" "$kind" "${prefix}_bytes" "" "$(pg $BR info --repo=$i --output=json | python3 -c "import json,sys; print(json.load(sys.stdin)[0]['backup'][-1]['info']['repository']['delta'])")"
      echo "    $kind: lifeboat ${tl}s, pgBackRest ${tb}s"
    done
  }
  echo "==> run $run: full backups"
  backups full_backup full

  echo "==> run $run: 5% of the database changes (a new table), then incremental backups"
  local ROWS=$(( SIZE / 20 / 100 ))
  $PSQL -c "create table changed as select g as id, md5(g::text) || md5((g * 7)::text) as v from generate_series(1, $ROWS) g"
  $PSQL -c "checkpoint"
  record "$run" all changed_bytes "$($PSQL -c "select pg_total_relation_size('changed')")" ""
  backups incr_backup incr --incremental

  echo "==> run $run: writing ≥256 MiB of WAL after the backups"
  local START_LSN BYTES TARGET_LSN SEG
  START_LSN=$($PSQL -c "select pg_current_wal_lsn()")
  pgbench -h 127.0.0.1 -p $PORT -U postgres -n -T 600 -c 2 -j 2 postgres >/dev/null 2>&1 &
  local BENCH=$!
  while true; do
    BYTES=$($PSQL -c "select pg_current_wal_lsn() - '$START_LSN'::pg_lsn")
    [ "${BYTES%.*}" -ge $((${WAL_MIB:-280} * 1024 * 1024)) ] && break
    sleep 1
  done
  kill $BENCH; wait $BENCH 2>/dev/null || true
  TARGET_LSN=$($PSQL -c "select pg_current_wal_lsn()")
  SEG=$($PSQL -c "select pg_walfile_name(pg_switch_wal())")
  until [ "$($PSQL -c "select last_archived_wal >= '$SEG' from pg_stat_archiver")" = t ]; do sleep 0.5; done
  record "$run" all wal_after_backup_bytes "${BYTES%.*}" ""
  pg "$PG_BIN/pg_ctl" -D "$R/primary" -m fast stop >/dev/null

  restore_lb() { # kind pgdata [--delta]
    local kind=$1 dir=$2; shift 2
    timed "$R/rss" "$LB" pg restore --repo "$(lb_repo "$kind" "$run" main)" --pgdata "$dir" --target-lsn "$TARGET_LSN" \
      --start --port "$RPORT" --parallel 2 --json "$@"
    # Where the time went, as lifeboat reports it: download and unpack, then start-up and replay.
    python3 -c "import json; r = json.load(open('$R/rss.out')); print(r['unpack_ms'] / 1000, r['recovery_ms'] / 1000)" > "$R/split"
  }
  restore_br() { # repo-index pgdata [--delta]
    local index=$1 dir=$2 t0 t1; shift 2
    settle; t0=$(seconds)
    /usr/bin/time -f %M -o "$R/rss" runuser -u postgres -- env "${ENVS[@]}" $BR restore --repo="$index" --pg1-path="$dir" \
      --type=lsn --target="$TARGET_LSN" --target-action=promote "$@" >/dev/null
    local tm; tm=$(seconds)
    printf 'port = %s\narchive_mode = off\n' "$RPORT" >> "$dir/postgresql.auto.conf"
    pg "$PG_BIN/pg_ctl" -D "$dir" -l "$R/pgbr-restore.log" start >/dev/null
    until [ "$(psql -h 127.0.0.1 -p "$RPORT" -U postgres -qAt -c 'select not pg_is_in_recovery()' 2>/dev/null)" = t ]; do sleep 0.05; done
    t1=$(seconds); echo "$(elapsed "$t0" "$tm") $(elapsed "$tm" "$t1")" > "$R/split"; elapsed "$t0" "$t1"
  }
  record_split() { # kind tool-column
    local unpack recovery; read -r unpack recovery < "$R/split"
    if [ "$2" = lifeboat ]; then record "$run" "$1" restore_unpack_s "$unpack" ""; record "$run" "$1" restore_recovery_s "$recovery" ""
    else record "$run" "$1" restore_unpack_s "" "$unpack"; record "$run" "$1" restore_recovery_s "" "$recovery"; fi
  }
  stop_restored() { pg "$PG_BIN/pg_ctl" -D "$1" -m fast stop >/dev/null; }

  i=0
  for kind in "${kinds[@]}"; do
    i=$((i + 1))
    echo "==> run $run, $kind: restore + replay to $TARGET_LSN until promoted (alternating; best of two; then --delta)"
    # Alternating matters on a VM: the first writer of 1 GiB of page cache also pays the
    # host for backing guest memory touched for the first time.
    local l1 b1 b2 l2 ld bd
    l1=$(restore_lb "$kind" "$R/restore-lb"); record "$run" "$kind" restore_rss_kib "$(rss "$R/rss")" ""; record_split "$kind" lifeboat
    stop_restored "$R/restore-lb"; mv "$R/restore-lb" "$R/restore-lb-old"
    b1=$(restore_br $i "$R/restore-br"); record "$run" "$kind" restore_rss_kib "" "$(rss "$R/rss")"; record_split "$kind" pgbackrest
    stop_restored "$R/restore-br"; mv "$R/restore-br" "$R/restore-br-old"
    b2=$(restore_br $i "$R/restore-br"); stop_restored "$R/restore-br"; rm -rf "$R/restore-br"
    l2=$(restore_lb "$kind" "$R/restore-lb"); stop_restored "$R/restore-lb"; rm -rf "$R/restore-lb"
    record "$run" "$kind" restore_s "$(python3 -c "print(min($l1, $l2))")" "$(python3 -c "print(min($b1, $b2))")"
    echo "    fresh: lifeboat $l1 s / $l2 s, pgBackRest $b1 s / $b2 s"
    # Delta: over the first restore's copy, which replay and promotion have since changed.
    ld=$(restore_lb "$kind" "$R/restore-lb-old" --delta); stop_restored "$R/restore-lb-old"; rm -rf "$R/restore-lb-old"
    bd=$(restore_br $i "$R/restore-br-old" --delta); stop_restored "$R/restore-br-old"; rm -rf "$R/restore-br-old"
    record "$run" "$kind" delta_restore_s "$ld" "$bd"
    echo "    delta: lifeboat $ld s, pgBackRest $bd s"
  done

  local NSEG PW="$R/primary/pg_wal"
  NSEG=$(ls "$R/walcopy" | grep -c '^[0-9A-F]\{24\}$')
  mark_ready() {
    rm -rf "$PW/archive_status" "$PW/.lifeboat-pushed"; mkdir -p "$PW/archive_status"
    for f in "$R"/walcopy/*; do n=$(basename "$f"); [[ $n =~ ^[0-9A-F]{24}$ ]] || continue; cp "$f" "$PW/$n"; touch "$PW/archive_status/$n.ready"; done
    chown -R postgres "$PW"
  }
  push_all() {
    local t0 t1 n
    settle; t0=$(seconds)
    for f in "$R"/walcopy/*; do n=$(basename "$f"); [[ $n =~ ^[0-9A-F]{24}$ ]] || continue
      pg "$@" "$PW/$n"; mv "$PW/archive_status/$n.ready" "$PW/archive_status/$n.done"; done
    t1=$(seconds); elapsed "$t0" "$t1"
  }
  for kind in "${kinds[@]}"; do
    echo "==> run $run, $kind: archive-push throughput over the same $NSEG segments, one call at a time as the archiver makes them"
    local PUSHCONF="$R/pgbackrest-push-$kind.conf" tl tb
    { echo "[global]"; br_repo_conf 1 "$kind" "$run" "push"; printf 'compress-type=zst\nprocess-max=2\narchive-async=y\nspool-path=%s\nlog-path=%s\nlog-level-console=warn\n[bench]\npg1-path=%s\n' "$R/spool-push-$kind" "$R/log" "$R/primary"; } > "$PUSHCONF"
    mkdir -p "$R/spool-push-$kind" "$R/pgbr-push"; chown -R postgres "$R/spool-push-$kind" "$R/pgbr-push" "$PUSHCONF"
    mark_ready; tl=$(push_all "$LB" pg wal-push --parallel 2 --repo "$(lb_repo "$kind" "$run" push)")
    pg pgbackrest --config="$PUSHCONF" --stanza=bench --no-online stanza-create >/dev/null
    mark_ready; tb=$(push_all pgbackrest --config="$PUSHCONF" --stanza=bench archive-push)
    record "$run" "$kind" push_mib_s "$(python3 -c "print(f'{$NSEG * 16 / $tl:.1f}')")" "$(python3 -c "print(f'{$NSEG * 16 / $tb:.1f}')")"
    echo "    lifeboat ${tl}s, pgBackRest ${tb}s"
  done

  echo "==> run $run: archive lag under pgbench, one tool archiving at a time"
  rm -rf "$PW/.lifeboat-pushed"
  pg "$PG_BIN/pg_ctl" -D "$R/primary" -l "$R/primary.log" -w start >/dev/null
  for kind in "${kinds[@]}"; do
    for tool in lifeboat pgbackrest; do
      local cmd
      if [ $tool = lifeboat ]; then
        cmd="env ${ENVS[*]} $LB pg wal-push --repo '$(lb_repo "$kind" "$run" main)' %p"
      else
        # Only this kind's repository (the one the push benchmark used): the other kind
        # would add its own time to the lag.
        cmd="pgbackrest --config=$R/pgbackrest-push-$kind.conf --stanza=bench archive-push %p"
      fi
      $PSQL -c "alter system set archive_command = '${cmd//\'/\'\'}'" -c "select pg_reload_conf()" >/dev/null
      # Start with nothing left to archive: close the current segment (again, should
      # anything have written to it since) until the archiver has caught up.
      until [ "$($PSQL -c "select pg_switch_wal()" -c "select last_archived_wal >= pg_walfile_name(pg_current_wal_lsn() - 1) from pg_stat_archiver" | tail -1)" = t ]; do sleep 0.5; done
      local SAMPLES="$R/lag-$kind-$tool.tsv"
      : > "$SAMPLES"
      pgbench -h 127.0.0.1 -p $PORT -U postgres -n -T 30 -c 2 -j 2 postgres >/dev/null 2>&1 &
      BENCH=$!
      while kill -0 $BENCH 2>/dev/null; do
        $PSQL -F $'\t' -c "select extract(epoch from clock_timestamp()), pg_current_wal_lsn() - '0/0', coalesce(last_archived_wal, '') from pg_stat_archiver" >> "$SAMPLES" || true
        sleep 0.2
      done
      wait $BENCH 2>/dev/null || true
      local lag
      lag=$(python3 - "$SAMPLES" <<'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
samples = [(float(t), int(float(lsn)), wal) for t, lsn, wal in rows]
seg = 16 * 1024 * 1024
def written_at(pos):
    # The first sample at which the WAL had reached `pos`, interpolated from the one before.
    prev = None
    for t, lsn, _ in samples:
        if lsn >= pos:
            if prev is None or lsn == prev[1]:
                return t
            return prev[0] + (t - prev[0]) * (pos - prev[1]) / (lsn - prev[1])
        prev = (t, lsn)
    return None
lags = []
for t, lsn, wal in samples:
    if not wal:
        continue
    archived_to = (int(wal[8:16], 16) * 0x100000000 // seg + int(wal[16:24], 16) + 1) * seg
    if archived_to >= lsn:
        lags.append(0.0)
        continue
    w = written_at(archived_to)
    if w is not None:
        lags.append(max(0.0, t - w))
lags.sort()
q = lambda p: lags[min(len(lags) - 1, int(p * len(lags)))]
print(f"{q(0.5):.2f} {q(0.95):.2f} {lags[-1]:.2f}" if lags else "nan nan nan")
PY
)
      read -r p50 p95 worst <<<"$lag"
      if [ $tool = lifeboat ]; then
        record "$run" "$kind" lag_p50_s "$p50" ""; record "$run" "$kind" lag_p95_s "$p95" ""; record "$run" "$kind" lag_max_s "$worst" ""
      else
        record "$run" "$kind" lag_p50_s "" "$p50"; record "$run" "$kind" lag_p95_s "" "$p95"; record "$run" "$kind" lag_max_s "" "$worst"
      fi
      echo "    $kind, $tool: archive lag p50 $p50 s, p95 $p95 s, max $worst s"
    done
  done
  pg "$PG_BIN/pg_ctl" -D "$R/primary" -m immediate stop >/dev/null
  rm -rf "$R/primary" "$R"/lb-* "$R"/pgbr-* "$R/walcopy"
}

for run in $(seq "$RUNS"); do one_run "$run"; done
cp "$RESULTS" "${BENCH_RESULTS:-/tmp/lifeboat-bench-pitr.tsv}"
python3 - "$RESULTS" "$RUNS" "$REPOS" <<'PY'
import sys, statistics
from collections import defaultdict
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
runs, kinds = int(sys.argv[2]), sys.argv[3].split()
data = defaultdict(lambda: {"lb": {}, "br": {}})
for run, kind, figure, lb, br in rows:
    if lb: data[(kind, figure)]["lb"][int(run)] = float(lb)
    if br: data[(kind, figure)]["br"][int(run)] = float(br)
size = statistics.median(data[("all", "database_bytes")]["lb"].values())
changed = statistics.median(data[("all", "changed_bytes")]["lb"].values())
wal = statistics.median(data[("all", "wal_after_backup_bytes")]["lb"].values())
print(f"\nDatabase {size/1e6:,.0f} MB; changed before the incremental backup {changed/1e6:,.0f} MB ({100*changed/size:.1f}%); "
      f"{wal/2**20:,.0f} MiB of WAL after the backups; {runs} run(s).")
label = {
    "full_backup_s": ("full backup", "s", False), "full_backup_bytes": ("– bytes stored", "MB", False),
    "incr_backup_s": ("incremental backup, 5% changed", "s", False), "incr_backup_bytes": ("– bytes stored", "MB", False),
    "restore_s": ("restore + replay, promoted (fresh, best of 2)", "s", False),
    "restore_unpack_s": ("– of the first: restore command (lifeboat: download and unpack)", "s", False),
    "restore_recovery_s": ("– of the first: start-up and replay until promoted", "s", False),
    "delta_restore_s": ("restore --delta over an older copy", "s", False),
    "push_mib_s": ("archive-push throughput", "MiB/s", True),
    "lag_p50_s": ("archive lag under pgbench, p50", "s", False), "lag_p95_s": ("– p95", "s", False), "lag_max_s": ("– max", "s", False),
    "full_backup_rss_kib": ("peak RSS: full backup", "MB", False), "incr_backup_rss_kib": ("– incremental backup", "MB", False),
    "restore_rss_kib": ("– restore", "MB", False),
}
for kind in kinds:
    print(f"\n**{kind}** | lifeboat (per run) | pgBackRest (per run) | lifeboat ÷ pgBackRest (median of per-run ratios) |")
    print("|---|---|---|---|")
    for figure, (name, unit, higher) in label.items():
        d = data.get((kind, figure))
        if not d: continue
        scale = {"MB": 1e-6, "s": 1, "MiB/s": 1}[unit]
        if figure.endswith("_kib"): scale = 1024e-6
        fmt = lambda vals: " / ".join(f"{vals[r]*scale:,.1f}" if r in vals else "–" for r in sorted(set(d["lb"]) | set(d["br"])))
        ratios = [d["lb"][r] / d["br"][r] for r in d["lb"] if r in d["br"] and d["br"][r] > 0]
        ratio = f"{statistics.median(ratios):.2f}×" if ratios else "–"
        print(f"| {name} ({unit}) | {fmt(d['lb'])} | {fmt(d['br'])} | {ratio} |")
PY
