#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo-fuzz, libFuzzer with AddressSanitizer) of every parser of
# untrusted input: ingest's JSON forms, HMPPS adapter and CSV extract, and the Avro decoder.
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]   (default 300 s; all four targets)
# Each target starts from its committed corpus and the real samples (tests/fuzz/seeds,
# tests/fixtures/hmpps), runs for the budget, and its corpus is then minimised back into
# tests/fuzz/corpus/<target>. Prints one tab-separated line per target:
#   target  runs  seconds  coverage  corpus-files  crashes
# and exits non-zero when a target crashed; the input is kept in tests/fuzz/artifacts/<target>/.
# Needs the nightly toolchain (the sanitizer flags are unstable); cargo-fuzz is installed into
# the tools cache once.
source "$(dirname "$0")/lib.sh"

seconds="${1:-300}"
shift || true
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(events hmpps extract avro)

CARGO_FUZZ_VERSION="0.13.2"
CARGO_FUZZ="$TOOLS_DIR/cargo-fuzz-$CARGO_FUZZ_VERSION/bin/cargo-fuzz"
if [[ ! -x "$CARGO_FUZZ" ]]; then
  log "installing cargo-fuzz $CARGO_FUZZ_VERSION (once per machine)"
  cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked \
    --root "$TOOLS_DIR/cargo-fuzz-$CARGO_FUZZ_VERSION" >/dev/null
fi
rustup run nightly rustc --version >/dev/null 2>&1 \
  || die "the nightly toolchain is needed for fuzzing: rustup toolchain install nightly"

fuzz_dir="$ROOT/tests/fuzz"
out="$ROOT/target/fuzz-runs"
mkdir -p "$out"
# `fuzz build|run TARGET ARGS...`: the target directory goes before the target, as arguments
# after `--` are libFuzzer's.
fuzz() {
  local command=$1; shift
  (cd "$fuzz_dir" && RUSTUP_TOOLCHAIN=nightly "$CARGO_FUZZ" "$command" -O --target-dir "$ROOT/target/fuzz" "$@")
}

log "building the fuzz targets (nightly, instrumented)"
fuzz build >"$out/build.log" 2>&1 || { tail -30 "$out/build.log" >&2; die "building the fuzz targets failed"; }

failed=0
for target in "${targets[@]}"; do
  case "$target" in
    hmpps) seeds=("$ROOT"/tests/fixtures/hmpps/*/) ;;
    *) seeds=("$fuzz_dir/seeds/$target") ;;
  esac
  corpus="$fuzz_dir/corpus/$target"
  work="$out/$target"
  rm -rf "$work" && mkdir -p "$work" "$corpus" "$fuzz_dir/artifacts/$target"
  log "fuzzing $target for ${seconds}s"
  crashes=0
  # New inputs go to a scratch directory, so the committed corpus only ever holds the
  # minimised set.
  if ! fuzz run "$target" "$work" "$corpus" "${seeds[@]}" -- \
      -max_total_time="$seconds" -max_len=16384 -timeout=10 -rss_limit_mb=4096 \
      -print_final_stats=1 >"$out/$target.log" 2>&1; then
    crashes=1
    failed=1
    grep -E "ERROR|panicked|SUMMARY|Test unit written" "$out/$target.log" | head -20 >&2 || true
  fi
  runs=$(grep -oE "^stat::number_of_executed_units: *[0-9]+" "$out/$target.log" | grep -oE "[0-9]+$" || echo 0)
  cov=$(grep -oE "cov: [0-9]+" "$out/$target.log" | tail -1 | grep -oE "[0-9]+" || echo 0)
  if [[ $crashes -eq 0 ]]; then
    # Keep the smallest set of inputs that reaches the same coverage.
    merged="$out/$target.merged"
    rm -rf "$merged" && mkdir -p "$merged"
    fuzz run "$target" "$merged" "$corpus" "$work" -- -set_cover_merge=1 -max_len=16384 \
      >"$out/$target.merge.log" 2>&1 || die "minimising the $target corpus failed (see $out/$target.merge.log)"
    rm -rf "$corpus" && mv "$merged" "$corpus"
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$target" "$runs" "$seconds" "$cov" \
    "$(find "$corpus" -type f | wc -l)" "$crashes"
done
exit "$failed"
