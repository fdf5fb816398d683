#!/usr/bin/env bash
# Run the whole test suite against the real broker and PostgreSQL.
# Starts the local stack if it is not running (installing what is missing) and stops again
# what it started. Extra arguments go to the test runner, e.g. `scripts/test.sh -E 'test(rate)'`.
source "$(dirname "$0")/lib.sh"

command -v cargo >/dev/null || die "cargo is not installed; install Rust with rustup first"

started=""
if ! port_open "$BROKER_HOST" "$BROKER_PORT"; then
  started=yes
fi
"$ROOT/scripts/stack.sh" up
if [[ -n "$started" && -z "${CONTINUITY_KEEP_STACK:-}" ]]; then
  trap '"$ROOT/scripts/stack.sh" down' EXIT
fi
# shellcheck disable=SC1091
source "$STACK_DIR/env"

cd "$ROOT"
if command -v cargo-nextest >/dev/null; then
  cargo nextest run --workspace --no-fail-fast "$@"
else
  cargo test --workspace --no-fail-fast "$@"
fi
