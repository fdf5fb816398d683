#!/usr/bin/env bash
# The soak: the whole pipeline (ingest, matcher, reporter, worklist: release builds, each its own
# process) on the local stack at ten times England's peak hour for 30 minutes, one event a
# request through ingest; memory, lag and outbox age sampled, error log lines counted, a plot
# written. Arguments go to continuity-soak (tests/src/bin/continuity-soak.rs), e.g.
#   scripts/soak.sh --minutes 30 --png docs/soak.png --csv docs/soak.csv
source "$(dirname "$0")/lib.sh"
stack_up
export_worklist_assets
cd "$ROOT"
cargo build --release --quiet -p continuity-ingest -p continuity-matcher -p continuity-reporter \
  -p continuity-worklist -p continuity-e2e --bins
exec "$ROOT/target/release/continuity-soak" "$@"
