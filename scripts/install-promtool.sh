#!/usr/bin/env bash
# Build Prometheus's promtool (for `promtool test rules`) from the Go module proxy into the
# tool cache, once per version. Needs Go. Prints the binary's path. The first build takes
# about ten minutes on two cores; the module and build caches stay in the tool cache.
source "$(dirname "$0")/lib.sh"

version="v0.316.0"
dir="$TOOLS_DIR/promtool-$version"
if [[ ! -x "$dir/promtool" ]]; then
  command -v go >/dev/null || die "go is not installed; promtool is built from source with it"
  log "building promtool $version into $dir (once; about ten minutes)" >&2
  mkdir -p "$dir"
  GOBIN="$dir" GOPATH="$TOOLS_DIR/go" GOMODCACHE="$TOOLS_DIR/go/pkg/mod" \
    GOCACHE="$TOOLS_DIR/go/cache" GOFLAGS=-modcacherw \
    go install "github.com/prometheus/prometheus/cmd/promtool@$version" >&2 \
    || die "building promtool failed"
fi
echo "$dir/promtool"
