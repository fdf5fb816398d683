#!/usr/bin/env bash
# Bring up the local stack and run the pipeline on sample data.
# Today that is: PostgreSQL and the broker, the topics, and the sample scenario produced to
# the source topics as Avro, consumed back, validated and assessed; the cases and the
# continuity rate are printed. Leaves the stack running (scripts/stack.sh down stops it).
source "$(dirname "$0")/lib.sh"

command -v cargo >/dev/null || die "cargo is not installed; install Rust with rustup first"
"$ROOT/scripts/stack.sh" up
# shellcheck disable=SC1091
source "$STACK_DIR/env"

# A local secret for keyed hashes, made once and kept out of the repository.
secret_file="$STACK_DIR/hash-secret"
[[ -s "$secret_file" ]] || head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$secret_file"
export CONTINUITY_HASH_SECRET="$(cat "$secret_file")"

cd "$ROOT"
log "building"
cargo build --quiet --bin continuity
bin="$ROOT/target/debug/continuity"
log "topics"
"$bin" topics >/dev/null
log "running the sample scenario through the broker"
echo
"$bin" sample
echo
"$ROOT/scripts/stack.sh" status
