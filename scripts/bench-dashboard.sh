#!/usr/bin/env bash
# Benchmark of the dashboard in Debian's headless Chromium against a release-built
# `lifeboat serve` on a SQLite journal:
#   1. first contentful paint of /ui/runs with 10,000 runs in the journal (30 loads);
#   2. delay from a step's journal event to the browser repainting its DAG node, over a
#      run of 60 sequential 100 ms steps.
#
#   scripts/bench-dashboard.sh            # BENCH_RUNS=10000 by default
set -euo pipefail
cd "$(dirname "$0")/.."
for p in chromium chromium-driver; do
  dpkg -s "$p" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null; break; }
done
cargo nextest run --release --test dashboard --run-ignored only --no-capture \
  bench_first_paint_with_10000_runs_and_event_to_browser_delay 2>&1 | grep -E '^(seeded|journal|runs page|journal event|snapshot on)'
