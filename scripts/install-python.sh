#!/usr/bin/env bash
# Install the Python tools the tests use (scripts/python/requirements.txt) into a virtual
# environment in the tool cache, once per version of the requirements. Prints the
# environment's python.
source "$(dirname "$0")/lib.sh"

requirements="$ROOT/scripts/python/requirements.txt"
stamp="$(sha256sum "$requirements" | cut -c1-12)"
venv="$TOOLS_DIR/python-$stamp"
if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c "import fastavro, openapi_spec_validator, yaml, jsonschema, kubernetes_validate" 2>/dev/null; then
  log "installing the Python test tools into $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv" >&2 || die "python3 -m venv failed; install Python 3 with its venv module"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements" >&2 \
    || die "pip could not install $requirements"
fi
echo "$venv/bin/python"
