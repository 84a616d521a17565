#!/usr/bin/env bash
# lifeboat's side of the failover comparison: runs plans/region-failover.yaml N times and
# prints, per run, the time from the kill (observed) to the first canary write acknowledged
# through the endpoint, read from the journal's side channel. Patroni's side:
# scripts/bench-patroni.sh.   sudo scripts/bench-failover.sh [runs]
set -euo pipefail
runs=${1:-5}
cd "$(dirname "$0")/.."
cargo build --release -q
state=$(mktemp -d /tmp/lifeboat-bench-failover-XXXX)/state.db
for _ in $(seq "$runs"); do
  target/release/lifeboat --state "$state" drill plans/region-failover.yaml --report "${state%/*}/last.json" >/dev/null
done
target/release/lifeboat --state "$state" runs trend region-failover
python3 - "$state" <<'PY'
import datetime, json, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
for (run,) in db.execute("SELECT DISTINCT run_id FROM records ORDER BY run_id"):
    (killed,) = db.execute("SELECT at FROM records WHERE run_id=? AND channel='fault/east_lost' AND record_key=0", (run,)).fetchone()
    (payload,) = db.execute(
        "SELECT payload FROM records WHERE run_id=? AND channel='canary/canary' AND at>? ORDER BY at LIMIT 1", (run, killed)
    ).fetchone()
    acked = datetime.datetime.fromisoformat(json.loads(payload)["acked_at"].replace("Z", "+00:00")).timestamp()
    print(f"{run}: kill -> first write acknowledged through the endpoint {acked - killed / 1e6:.3f} s")
PY
