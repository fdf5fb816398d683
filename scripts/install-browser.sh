#!/usr/bin/env bash
# Install what the browser tests need: Debian's chromium (the tests drive it with Playwright;
# Playwright's own browser download cannot run here) and tests/browser/package.json's pinned
# packages (playwright-core, axe-core) into the tool cache, once per version of the lock file.
# Prints the directory holding their node_modules (CONTINUITY_BROWSER_MODULES).
source "$(dirname "$0")/lib.sh"

if ! command -v chromium >/dev/null; then
  command -v apt-get >/dev/null || die "chromium is not installed and there is no apt-get to install it"
  log "installing chromium" >&2
  if [[ $(id -u) -eq 0 ]]; then sudo=""; else sudo="sudo"; fi
  { $sudo apt-get update -qq && $sudo apt-get install -y -qq chromium; } >&2 || die "apt-get could not install chromium"
fi
command -v npm >/dev/null || die "npm is not installed; install Node.js 20 or later with npm"
lock="$ROOT/tests/browser/package-lock.json"
stamp="$(cat "$ROOT/tests/browser/package.json" "$lock" | sha256sum | cut -c1-12)"
dir="$TOOLS_DIR/browser-tests-$stamp"
if [[ ! -f "$dir/.complete" ]]; then
  log "installing the browser test packages into $dir" >&2
  rm -rf "$dir"
  mkdir -p "$dir"
  cp "$ROOT/tests/browser/package.json" "$lock" "$dir/"
  (cd "$dir" && npm ci --silent --no-audit --no-fund >&2) || die "npm ci failed in $dir"
  touch "$dir/.complete"
fi
echo "$dir/node_modules"
