#!/usr/bin/env bash
# Benchmark the matcher: replay EVENTS generated events (default 1,000,000) through it on the
# local stack and print events/s, apply latency, memory and the raw consume ceiling.
#   scripts/bench-matcher.sh [EVENTS] [SEED]
source "$(dirname "$0")/lib.sh"
"$ROOT/scripts/stack.sh" up
# shellcheck disable=SC1091
source "$STACK_DIR/env"
cd "$ROOT"
cargo build --release --quiet -p continuity-matcher --bins
exec "$ROOT/target/release/continuity-matcher-bench" "$@"
