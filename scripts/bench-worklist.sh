#!/usr/bin/env bash
# Benchmark the worklist on the local stack: page latency for 50 signed-in users on a national
# database of 300,000 cases (one provider with 2,000 open), with and without a pause between
# pages, and the delay from the deadline clock passing a due instant to the flag on the
# worklist. Arguments go to continuity-worklist-bench (--help lists them).
#   scripts/bench-worklist.sh [--seconds 30] [--days 20] [--deadline-interval-ms 1000]
source "$(dirname "$0")/lib.sh"
stack_up
export_worklist_assets
cd "$ROOT"
cargo build --release --quiet -p continuity-e2e --bin continuity-worklist-bench
exec "$ROOT/target/release/continuity-worklist-bench" "$@" 2> >(grep -v '"level":"INFO"' >&2)
