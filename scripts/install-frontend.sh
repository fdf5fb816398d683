#!/usr/bin/env bash
# Install the worklist's front-end packages (scripts/frontend/package.json, pinned by its
# package-lock.json) into the tool cache, once per version of the lock file, and print the
# directory the worklist serves under /assets (CONTINUITY_ASSETS_DIR): GOV.UK Frontend's
# fonts, images, CSS and JS, and MoJ Frontend's, with the module that starts both.
source "$(dirname "$0")/lib.sh"

dir="$(npm_packages frontend "$ROOT/scripts/frontend" "$ROOT/scripts/frontend/init.mjs")"
if [[ ! -s "$dir/assets/.complete" ]]; then
  govuk="$dir/node_modules/govuk-frontend/dist/govuk"
  moj="$dir/node_modules/@ministryofjustice/frontend/moj"
  [[ -f "$govuk/govuk-frontend.min.css" ]] || die "govuk-frontend has no dist/govuk/govuk-frontend.min.css"
  mkdir -p "$dir/assets"
  cp -R "$govuk/assets/." "$dir/assets/"
  cp "$govuk/govuk-frontend.min.css" "$govuk/govuk-frontend.min.js" "$dir/assets/"
  cp "$moj/moj-frontend.min.css" "$moj/moj-frontend.min.js" "$dir/assets/"
  cp -R "$moj/assets/." "$dir/assets/" 2>/dev/null || true
  cp "$ROOT/scripts/frontend/init.mjs" "$dir/assets/init.mjs"
  # The fixtures the worklist's component tests compare against.
  mkdir -p "$dir/fixtures"
  for c in "$govuk/components"/*/; do
    name="$(basename "$c")"
    [[ -f "$c/fixtures.json" ]] && cp "$c/fixtures.json" "$dir/fixtures/$name.json"
  done
  date -u +%FT%TZ >"$dir/assets/.complete"
fi
echo "$dir"
