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
echo "$(npm_packages browser-tests "$ROOT/tests/browser")/node_modules"
