# Shared settings for the local-stack scripts. Sourced, never run.
# Everything the stack writes lives under $STACK_DIR (project-local, git-ignored);
# tools fetched from registries (Kafka's jars, cargo-nextest) live in a per-user cache keyed by
# version, outside the clone, so every clone and CI run on one machine reuses them.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACK_DIR="${CONTINUITY_STACK_DIR:-$ROOT/.stack}"
TOOLS_DIR="${CONTINUITY_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/continuity-tools}"

# Apache Kafka: the same release as docker-compose.yml and k8s/.
KAFKA_VERSION="4.3.1"
KAFKA_HOME="$TOOLS_DIR/kafka-$KAFKA_VERSION"
JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"
BROKER_HOST="127.0.0.1"
BROKER_PORT="${CONTINUITY_BROKER_PORT:-9092}"
BROKER_CONTROLLER_PORT="${CONTINUITY_BROKER_CONTROLLER_PORT:-$((BROKER_PORT + 1))}"
BROKER_ADDR="$BROKER_HOST:$BROKER_PORT"

PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
PG_LOCAL_PORT="${CONTINUITY_PG_PORT:-55432}"
DEFAULT_DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres"

log() { printf '[stack] %s\n' "$*" >&2; }
die() { printf '[stack] error: %s\n' "$*" >&2; exit 1; }

# Bring the local stack up (scripts/stack.sh up) and take its environment: DATABASE_URL,
# CONTINUITY_DATABASE_URL, CONTINUITY_BROKERS.
stack_up() {
  "$ROOT/scripts/stack.sh" up
  # shellcheck disable=SC1091
  source "$STACK_DIR/env"
}

# CONTINUITY_ASSETS_DIR for a worklist: GOV.UK and MoJ Frontend's assets, installed if missing
# (scripts/install-frontend.sh).
export_worklist_assets() {
  CONTINUITY_ASSETS_DIR="$("$ROOT/scripts/install-frontend.sh")/assets"
  export CONTINUITY_ASSETS_DIR
}

# Wait until `$@` succeeds, at most $1 seconds.
wait_for() {
  local seconds=$1; shift
  local i
  for ((i = 0; i < seconds * 4; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.25
  done
  return 1
}

# True when something accepts TCP connections on host:port.
port_open() {
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# Run a PostgreSQL server binary on the cluster under directory $1 as a non-root user (initdb
# and postgres refuse root).
as_pg_user() {
  local dir=$1; shift
  if [[ $EUID -eq 0 ]]; then
    id postgres >/dev/null 2>&1 || useradd --system --home-dir "$dir" postgres
    chown -R postgres "$dir"
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# Test TLS material under directory $1, once: a CA (ca.pem), a second CA that signed nothing
# (other-ca.pem), and a certificate for `localhost` signed by the first (server.crt with its
# key server.key, both also in server.pem, key first, as Kafka's PEM keystore takes them).
test_certificates() {
  local dir=$1
  [[ -f "$dir/server.pem" ]] && return 0
  command -v openssl >/dev/null || die "openssl is not installed"
  mkdir -p "$dir"
  ( cd "$dir"
    for ca in ca other-ca; do
      openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=continuity test $ca" \
        -keyout "$ca.key" -out "$ca.pem" 2>/dev/null
    done
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout server.key -out server.csr 2>/dev/null
    printf 'subjectAltName=DNS:localhost\n' >server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 \
      -extfile server.ext -out server.crt 2>/dev/null
    cat server.key server.crt >server.pem
    chmod 600 server.key server.pem ) || die "making test TLS material under $dir failed"
}

# Build the Go command $2 (module path@version) into the tool cache as $TOOLS_DIR/$1/, once;
# the module and build caches stay in the tool cache. Prints the directory.
go_tool() {
  local name=$1 module=$2 dir="$TOOLS_DIR/$1"
  if [[ ! -f "$dir/.complete" ]]; then
    command -v go >/dev/null || die "go is not installed; $name is built from source with it"
    log "building $module into $dir (once)" >&2
    mkdir -p "$dir"
    go_env go install "$module" >&2 || die "building $module failed"
    touch "$dir/.complete"
  fi
  echo "$dir"
}

# Run a go command with the tool cache's module and build caches (GOBIN: go_tool's $dir).
go_env() {
  GOBIN="${dir:-$TOOLS_DIR/go/bin}" GOPATH="$TOOLS_DIR/go" GOMODCACHE="$TOOLS_DIR/go/pkg/mod" \
    GOCACHE="$TOOLS_DIR/go/cache" GOFLAGS=-modcacherw GOTOOLCHAIN=local "$@"
}

# Install the npm packages pinned by $2/package.json and $2/package-lock.json into the tool
# cache as $TOOLS_DIR/$1-<stamp>, once per version of those files (and of any further files
# given, which the stamp also covers). Prints the directory.
npm_packages() {
  local name=$1 src=$2
  shift 2
  command -v npm >/dev/null || die "npm is not installed; install Node.js 20 or later with npm"
  local stamp dir
  stamp="$(cat "$src/package.json" "$src/package-lock.json" "$@" | sha256sum | cut -c1-12)"
  dir="$TOOLS_DIR/$name-$stamp"
  if [[ ! -f "$dir/.complete" ]]; then
    log "installing the npm packages of $src into $dir" >&2
    rm -rf "$dir"
    mkdir -p "$dir"
    cp "$src/package.json" "$src/package-lock.json" "$dir/"
    (cd "$dir" && npm ci --silent --no-audit --no-fund >&2) || die "npm ci failed in $dir"
    touch "$dir/.complete"
  fi
  echo "$dir"
}
