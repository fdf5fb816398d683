#!/usr/bin/env bash
# Build Prometheus's promtool (for `promtool test rules`) from the Go module proxy into the
# tool cache, once per version. Needs Go. Prints the binary's path. The first build takes
# about ten minutes on two cores; the module and build caches stay in the tool cache.
source "$(dirname "$0")/lib.sh"

version="v0.316.0"
echo "$(go_tool "promtool-$version" "github.com/prometheus/prometheus/cmd/promtool@$version")/promtool"
