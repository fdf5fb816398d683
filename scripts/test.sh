#!/usr/bin/env bash
# Run the whole test suite against the real broker and PostgreSQL.
# Starts the local stack if it is not running (installing what is missing) and stops again
# what it started. Extra arguments go to cargo test, e.g. `scripts/test.sh -p continuity-domain`.
source "$(dirname "$0")/lib.sh"

command -v cargo >/dev/null || die "cargo is not installed; install Rust with rustup first"

# The reporter's page and the worklist's pages are tested in headless Chromium (Debian's
# package), the worklist's with Playwright and axe-core (scripts/install-browser.sh).
CONTINUITY_BROWSER_MODULES="$("$ROOT/scripts/install-browser.sh")"
export CONTINUITY_BROWSER_MODULES
# The worklist serves GOV.UK Frontend's assets; its components are checked against the
# package's fixtures.
frontend="$("$ROOT/scripts/install-frontend.sh")"
export CONTINUITY_ASSETS_DIR="$frontend/assets" CONTINUITY_GOVUK_FIXTURES="$frontend/fixtures"
export CONTINUITY_REQUIRE_FIXTURES=1

# The alert rules, checked and unit-tested (deploy/prometheus/rules.test.yml).
PROMTOOL="$("$ROOT/scripts/install-promtool.sh")"
"$PROMTOOL" check rules "$ROOT/deploy/prometheus/rules.yml" >/dev/null
(cd "$ROOT/deploy/prometheus" && "$PROMTOOL" test rules rules.test.yml)

# The cross-language Avro check reads and writes messages with fastavro.
CONTINUITY_PYTHON="$("$ROOT/scripts/install-python.sh")"
export CONTINUITY_PYTHON

# Ingest's API description: valid OpenAPI 3.1, and its per-kind request schemas as generated
# from schemas/ (scripts/openapi/kinds.py).
"$(dirname "$CONTINUITY_PYTHON")/openapi-spec-validator" "$ROOT/services/ingest/openapi.yaml" >/dev/null \
  || die "services/ingest/openapi.yaml is not a valid OpenAPI document (see above)"
"$CONTINUITY_PYTHON" "$ROOT/scripts/openapi/kinds.py" --check

# docker-compose.yml and the Kubernetes overlays, with their ecosystems' own tools.
"$ROOT/scripts/check-deploy.sh"

started=""
if ! "$ROOT/scripts/kafka-node.sh" running "$STACK_DIR/kafka" && ! port_open "$BROKER_HOST" "$BROKER_PORT"; then
  started=yes
fi
"$ROOT/scripts/stack.sh" up
if [[ -n "$started" && -z "${CONTINUITY_KEEP_STACK:-}" ]]; then
  trap '"$ROOT/scripts/stack.sh" down' EXIT
fi
# shellcheck disable=SC1091
source "$STACK_DIR/env"

cd "$ROOT"
# The fault tests (tests/tests/faults.rs) run the services' own binaries; `cargo test -p` alone
# would not build them.
cargo build --workspace --bins --quiet
# cargo test runs the test binaries one after another, each binary's tests on parallel threads;
# the crash and fault tests take a lock so they run alone.
# Everything the suite writes, the services' log lines included, and every error body a service
# answered a test with (CONTINUITY_ERROR_BODIES, written by the tests' HTTP clients) is kept
# and then scanned for personal identifiers (tests/src/bin/continuity-scan-output.rs).
output="$ROOT/target/test-output.log"
export CONTINUITY_ERROR_BODIES="$ROOT/target/error-bodies.log"
mkdir -p "$ROOT/target"
: >"$CONTINUITY_ERROR_BODIES"
set +e
cargo test --workspace --no-fail-fast "$@" 2>&1 | tee "$output"
status=${PIPESTATUS[0]}
set -e
[[ $status -eq 0 ]] || exit "$status"
cargo run --quiet -p continuity-e2e --bin continuity-scan-output -- "$output" "$CONTINUITY_ERROR_BODIES" \
  || die "the suite's output carries personal identifiers (listed above): a log line, metric or error body names a person"
