#!/usr/bin/env bash
# Ingest under load on loopback, measured with oha (installed from crates.io into the tools
# cache): sustained requests/s and latency for single JSON events and for 1,000-row NDJSON
# batches, each request answered only after the broker's acknowledgement (acks=all).
#   scripts/bench-ingest.sh [SECONDS_PER_SCENARIO] [CONNECTIONS]   (defaults 20, 16)
# Uses the local stack (started if needed), a fresh topic prefix and a scratch database.
source "$(dirname "$0")/lib.sh"

seconds="${1:-20}"
connections="${2:-16}"
OHA_VERSION="1.16.0"
OHA_BIN="$TOOLS_DIR/oha-$OHA_VERSION/bin/oha"
if [[ ! -x "$OHA_BIN" ]]; then
  log "installing oha $OHA_VERSION (once per machine)"
  cargo install oha --version "$OHA_VERSION" --locked --root "$TOOLS_DIR/oha-$OHA_VERSION" >/dev/null
fi

stack_up
cd "$ROOT"
log "building the release binary"
cargo build --release --quiet --bin continuity-ingest
bin="$ROOT/target/release/continuity-ingest"

dir="$STACK_DIR/bench-ingest"
rm -rf "$dir" && mkdir -p "$dir"
psql "$DATABASE_URL" -qAtc "drop database if exists continuity_bench with (force)" >/dev/null
psql "$DATABASE_URL" -qAtc "create database continuity_bench" >/dev/null
"$bin" new-token >"$dir/new-token"
token=$(head -1 "$dir/new-token")
cat >"$dir/sources.toml" <<TOML
[[sources]]
name = "bench-provider"
organisation = "PRV001"
role = "treatment_provider"
token_sha256 = "$(printf '%s' "$token" | "$bin" hash-token)"
requests_per_second = 1000000
TOML

start_json() { # episode, noms
  printf '{"episode_id":"%s","provider":"PRV001","local_authority":"E10000025","person":{"noms":"%s"},"attributor":{"first_initial":"J","surname_initial":"S","date_of_birth":"1990-04-01","sex":"MALE"},"triage_date":"2026-11-20","intervention_start":"2026-11-27"}' "$1" "$2"
}
# 1,000 distinct events: sent one per request in turn (oha -Z), and all in one request.
for i in $(seq 1 1000); do
  start_json "EP-$i" "$(printf 'A%04dBC' "$i")"; echo
done >"$dir/events.ndjson"

port=9113
prefix="bench$(date +%s)."
CONTINUITY_DATABASE_URL="${DATABASE_URL%/*}/continuity_bench" \
CONTINUITY_TOPIC_PREFIX="$prefix" CONTINUITY_HASH_SECRET=bench \
CONTINUITY_HTTP_ADDR="127.0.0.1:$port" CONTINUITY_SOURCES_FILE="$dir/sources.toml" \
RUST_LOG=warn "$bin" serve >"$dir/ingest.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
CONTINUITY_TOPIC_PREFIX="$prefix" "$ROOT/target/debug/continuity" topics >/dev/null 2>&1 \
  || CONTINUITY_TOPIC_PREFIX="$prefix" cargo run --quiet --bin continuity -- topics >/dev/null
wait_for 30 port_open 127.0.0.1 "$port" || die "ingest did not start; see $dir/ingest.log"

run() { # name, content type, body option (-D file or -Z file of lines), body file, connections
  "$OHA_BIN" --no-tui --output-format json -z "${seconds}s" -c "$5" -m POST \
    -H "Authorization: Bearer $token" -H "Content-Type: $2" "$3" "$4" \
    "http://127.0.0.1:$port/v1/events/treatment-starts" >"$dir/result-$1.json"
  python3 - "$dir/result-$1.json" "$1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
s, p = r["summary"], r["latencyPercentiles"]
codes = r.get("statusCodeDistribution", {})
print(f"{sys.argv[2]:<14} {s['requestsPerSec']:>9.0f} req/s   p50 {p['p50']*1000:7.1f} ms   p99 {p['p99']*1000:7.1f} ms   statuses {codes}")
PY
}
log "single events: $connections connections, ${seconds}s"
run single application/json -Z "$dir/events.ndjson" "$connections"
log "1,000-row NDJSON batches: 4 connections, ${seconds}s"
run batch-1000 application/x-ndjson -D "$dir/events.ndjson" 4
echo "(a batch request carries 1,000 events; results in $dir)"
