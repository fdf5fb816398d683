#!/usr/bin/env bash
# Benchmark the matcher: replay EVENTS generated events (default 1,000,000) through it on the
# local stack and print events/s, apply latency, memory, CPU and WAL per event, and the raw
# consume ceiling.
#   scripts/bench-matcher.sh [EVENTS] [SEED]
# With BENCH_PG_SETTINGS (e.g. "shared_buffers=4GB max_wal_size=8GB"), the bench runs against a
# throwaway PostgreSQL cluster under .stack/bench-postgres started with those settings, instead
# of the stack's server, and stops it afterwards.
source "$(dirname "$0")/lib.sh"
stack_up
cd "$ROOT"
cargo build --release --quiet -p continuity-matcher --bins

if [[ -n "${BENCH_PG_SETTINGS:-}" ]]; then
  dir="$STACK_DIR/bench-postgres"
  port="${BENCH_PG_PORT:-55433}"
  rm -rf "$dir" && mkdir -p "$dir"
  as_pg_user "$dir" "$PG_BIN/initdb" -D "$dir/data" -U postgres --auth=trust >/dev/null
  options="-p $port -k $dir -c listen_addresses=127.0.0.1"
  for setting in $BENCH_PG_SETTINGS; do options+=" -c $setting"; done
  as_pg_user "$dir" "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -o "$options" start >/dev/null
  trap 'as_pg_user "$dir" "$PG_BIN/pg_ctl" -D "$dir/data" -m fast stop >/dev/null; rm -rf "$dir"' EXIT
  log "benchmarking against a PostgreSQL cluster with: $BENCH_PG_SETTINGS"
  DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres" "$ROOT/target/release/continuity-matcher-bench" "$@"
else
  exec "$ROOT/target/release/continuity-matcher-bench" "$@"
fi
