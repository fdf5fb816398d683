#!/usr/bin/env bash
# Install the Tansu broker (a Kafka-protocol broker written in Rust) into the per-user tool
# cache, pinned to $TANSU_VERSION. Idempotent: does nothing when the binary is present.
# A cold build takes about 8 minutes on 2 cores.
source "$(dirname "$0")/lib.sh"

if [[ -x "$TANSU_BIN" ]]; then
  exit 0
fi
command -v cargo >/dev/null || die "cargo is not installed; install Rust with rustup first"
log "building tansu $TANSU_VERSION into $TOOLS_DIR (about 8 minutes the first time)"
mkdir -p "$TOOLS_DIR"
cargo install tansu --version "=$TANSU_VERSION" --locked --features libsql \
  --root "$TOOLS_DIR/tansu-$TANSU_VERSION.partial"
rm -rf "$TOOLS_DIR/tansu-$TANSU_VERSION"
mv "$TOOLS_DIR/tansu-$TANSU_VERSION.partial" "$TOOLS_DIR/tansu-$TANSU_VERSION"
log "installed $TANSU_BIN"
