#!/usr/bin/env bash
# Bring up the local stack and run the pipeline on sample data:
#   PostgreSQL and the broker; the topics; the migrations; the matcher and ingest, in the
#   background, with a token for each organisation of the sample (ingest keeps only hashes);
#   the sample scenario (every kind of outcome, and one record with a mistyped prison number
#   that ingest refuses, naming the field), 90 weeks of generated events up to today (enough for
#   a whole financial year by local authority; CONTINUITY_SAMPLE_WEEKS to change it) and the
#   real HMPPS payloads in tests/fixtures/hmpps, each sent through ingest's HTTP API by its
#   organisation as a source would; then, once the matcher has caught up, the cases, the
#   continuity rate per area and the caseworker flags it produced; then the weekly
#   commissioners' report for the week just ended, written and served by the reporter; then the
#   caseworkers' worklist with the development sign-in service, and how to sign in.
# Leaves the stack and the services running; `scripts/stack.sh down` stops everything.
source "$(dirname "$0")/lib.sh"

command -v cargo >/dev/null || die "cargo is not installed; install Rust with rustup first"
stack_up

# A local secret for keyed hashes, made once and kept out of the repository.
secret_file="$STACK_DIR/hash-secret"
[[ -s "$secret_file" ]] || head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$secret_file"
export CONTINUITY_HASH_SECRET="$(cat "$secret_file")"
export CONTINUITY_HTTP_ADDR="${CONTINUITY_HTTP_ADDR:-127.0.0.1:9101}"

cd "$ROOT"
log "building"
cargo build --quiet --bin continuity --bin continuity-matcher --bin continuity-reporter --bin continuity-ingest \
  --bin continuity-worklist --bin continuity-dev-issuer
assets="$("$ROOT/scripts/install-frontend.sh")/assets"
bin="$ROOT/target/debug"
"$bin/continuity" topics >/dev/null
"$bin/continuity-matcher" migrate

"$ROOT/scripts/stack.sh" stop matcher
log "starting the matcher (log: $STACK_DIR/matcher.log)"
nohup "$bin/continuity-matcher" >>"$STACK_DIR/matcher.log" 2>&1 &
echo $! >"$STACK_DIR/matcher.pid"
wait_for 30 port_open 127.0.0.1 "${CONTINUITY_HTTP_ADDR##*:}" \
  || die "the matcher did not start; see $STACK_DIR/matcher.log"

ingest_addr="${CONTINUITY_INGEST_ADDR:-127.0.0.1:9103}"
"$ROOT/scripts/stack.sh" stop ingest
"$bin/continuity" sources --out "$STACK_DIR/ingest"
log "starting ingest on $ingest_addr (log: $STACK_DIR/ingest.log)"
CONTINUITY_HTTP_ADDR="$ingest_addr" CONTINUITY_SOURCES_FILE="$STACK_DIR/ingest/sources.toml" \
  nohup "$bin/continuity-ingest" serve >>"$STACK_DIR/ingest.log" 2>&1 &
echo $! >"$STACK_DIR/ingest.pid"
wait_for 30 port_open 127.0.0.1 "${ingest_addr##*:}" || die "ingest did not start; see $STACK_DIR/ingest.log"

weeks="${CONTINUITY_SAMPLE_WEEKS:-90}"
log "sending the sample scenario, $weeks weeks of generated events and the HMPPS payloads through ingest"
# Messages already on the topics (earlier runs): the matcher has to read past them too.
before=$(psql "$CONTINUITY_DATABASE_URL" -qAtc "select coalesce(sum(next_offset), 0) from consumer_offsets" 2>/dev/null || echo 0)
produced=$("$bin/continuity" produce --ingest "http://$ingest_addr" --tokens "$STACK_DIR/ingest/tokens" --weeks "$weeks")
log "ingest wrote $produced events; waiting for the matcher"
echo
"$bin/continuity" summary --wait-for "$((before + produced))"
echo
log "writing the weekly report for the week just ended"
export CONTINUITY_REPORTS_DIR="$STACK_DIR/reports"
reporter_addr="${CONTINUITY_REPORTER_ADDR:-127.0.0.1:9102}"
"$bin/continuity-reporter" report --publish
if [[ -s "$STACK_DIR/reporter.pid" ]]; then kill "$(cat "$STACK_DIR/reporter.pid")" 2>/dev/null || true; fi
CONTINUITY_HTTP_ADDR="$reporter_addr" nohup "$bin/continuity-reporter" serve >>"$STACK_DIR/reporter.log" 2>&1 &
echo $! >"$STACK_DIR/reporter.pid"
wait_for 30 port_open 127.0.0.1 "${reporter_addr##*:}" || die "the reporter did not start; see $STACK_DIR/reporter.log"
echo "reports:          http://$reporter_addr/reports   (any week on demand: curl -X POST http://$reporter_addr/reports/2026-W47)"

worklist_port="${CONTINUITY_WORKLIST_PORT:-9104}"
issuer_port="${CONTINUITY_ISSUER_PORT:-9105}"
worklist_url="http://localhost:$worklist_port"
issuer_url="http://localhost:$issuer_port"
"$ROOT/scripts/stack.sh" stop dev-issuer
CONTINUITY_HTTP_ADDR="127.0.0.1:$issuer_port" CONTINUITY_ISSUER_URL="$issuer_url" \
  CONTINUITY_REDIRECT_URI="$worklist_url/sign-in/callback" \
  nohup "$bin/continuity-dev-issuer" >>"$STACK_DIR/dev-issuer.log" 2>&1 &
echo $! >"$STACK_DIR/dev-issuer.pid"
wait_for 30 port_open 127.0.0.1 "$issuer_port" || die "the development issuer did not start; see $STACK_DIR/dev-issuer.log"
"$ROOT/scripts/stack.sh" stop worklist
"$bin/continuity-worklist" migrate
CONTINUITY_HTTP_ADDR="127.0.0.1:$worklist_port" CONTINUITY_PUBLIC_URL="$worklist_url" \
  CONTINUITY_ISSUER_URL="$issuer_url" CONTINUITY_ASSETS_DIR="$assets" \
  nohup "$bin/continuity-worklist" >>"$STACK_DIR/worklist.log" 2>&1 &
echo $! >"$STACK_DIR/worklist.pid"
wait_for 30 port_open 127.0.0.1 "$worklist_port" || die "the worklist did not start; see $STACK_DIR/worklist.log"
echo "worklist:         $worklist_url   (open it in a browser on this machine)"
echo "  sign in with the development issuer ($issuer_url) as any of its test users:"
echo "    PRACTITIONER      probation practitioner, the sample's probation service: its cases by CRN"
echo "    KEYWORKER         treatment keyworker at provider PRV000: its cases by NOMS and NHS number"
echo "    KEYWORKER_OTHER   keyworker at PRV001 (other cases; never PRV000's)"
echo "    COMMISSIONER      commissioner for E06000001: counts only"
echo "    OPERATOR          no personal data"
echo
echo "ingest:           http://$ingest_addr/openapi.yaml   (metrics: /metrics; tokens: $STACK_DIR/ingest/tokens)"
echo "matcher metrics:  http://$CONTINUITY_HTTP_ADDR/metrics   (ready: /readyz)"
echo "matcher log:      $STACK_DIR/matcher.log"
echo "cases:            psql \"$CONTINUITY_DATABASE_URL\" -c 'select * from cases limit 5'"
echo
"$ROOT/scripts/stack.sh" status
