#!/usr/bin/env bash
# The local stack: PostgreSQL and Apache Kafka, as plain processes.
#
#   scripts/stack.sh up       install what is missing, start what is stopped, wait until healthy
#   scripts/stack.sh down     stop the services run.sh started and what this script started (data is kept)
#   scripts/stack.sh stop S   stop one service run.sh started (ingest, matcher, reporter, worklist, dev-issuer)
#   scripts/stack.sh status   what runs where
#   scripts/stack.sh env      print the environment the services and tests need
#   scripts/stack.sh reset    down, then delete .stack/
#
# Idempotent: `up` twice leaves one of each running. PostgreSQL: the server at DATABASE_URL
# when it answers (on this machine kind one runs on 127.0.0.1:5432), else a throwaway cluster
# under .stack/postgres on port $PG_LOCAL_PORT. Kafka (one KRaft node, scripts/kafka-node.sh)
# keeps its log under .stack/kafka; topics and committed offsets survive a restart. A broker
# given by CONTINUITY_BROKERS is used as it is.
source "$(dirname "$0")/lib.sh"

PG_DIR="$STACK_DIR/postgres"
BROKER_DIR="$STACK_DIR/kafka"
ENV_FILE="$STACK_DIR/env"

pg_answers() {
  command -v psql >/dev/null || return 1
  psql "$1" -qAtX -c 'select 1' >/dev/null 2>&1
}

install_postgres() {
  if [[ -x "$PG_BIN/initdb" ]] && command -v psql >/dev/null; then return 0; fi
  log "installing PostgreSQL from Debian's packages"
  command -v apt-get >/dev/null || die "no PostgreSQL binaries in $PG_BIN and no apt-get to install them; set PG_BIN"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq postgresql postgresql-client >/dev/null
  PG_BIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
}

postgres_up() {
  local url="${DATABASE_URL:-$DEFAULT_DATABASE_URL}"
  if pg_answers "$url"; then
    echo "$url"
    return 0
  fi
  # The machine's own server may just be stopped.
  if [[ -z "${DATABASE_URL:-}" ]] && command -v pg_ctlcluster >/dev/null && [[ -d /etc/postgresql ]]; then
    local version
    version="$(ls /etc/postgresql | sort -V | tail -n 1)"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start >/dev/null 2>&1 || true
    if wait_for 15 pg_answers "$url"; then
      echo "$url"
      return 0
    fi
  fi
  install_postgres
  local local_url="postgres://postgres@127.0.0.1:$PG_LOCAL_PORT/postgres"
  if ! pg_answers "$local_url"; then
    log "starting a local PostgreSQL cluster under $PG_DIR on port $PG_LOCAL_PORT"
    mkdir -p "$PG_DIR"
    if [[ ! -f "$PG_DIR/data/PG_VERSION" ]]; then
      as_pg_user "$PG_DIR" "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --auth=trust >/dev/null
    fi
    as_pg_user "$PG_DIR" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/postgres.log" -w \
      -o "-p $PG_LOCAL_PORT -k $PG_DIR -c listen_addresses=127.0.0.1" start >/dev/null
    wait_for 30 pg_answers "$local_url" || die "PostgreSQL did not start; see $PG_DIR/postgres.log"
  fi
  echo "$local_url"
}

# A broker given by CONTINUITY_BROKERS is used as it is; the stack starts none.
external_broker() { [[ -n "${CONTINUITY_BROKERS:-}" && "${CONTINUITY_BROKERS}" != "$BROKER_ADDR" ]]; }

broker_up() {
  if external_broker; then
    log "using the broker at CONTINUITY_BROKERS=$CONTINUITY_BROKERS"
    return 0
  fi
  if ! "$ROOT/scripts/kafka-node.sh" running "$BROKER_DIR" && port_open "$BROKER_HOST" "$BROKER_PORT"; then
    # Another clone's stack (or a broker run by hand) already serves this address: use it,
    # as with PostgreSQL. Set CONTINUITY_BROKER_PORT to run a separate one.
    log "a broker already listens on $BROKER_ADDR; using it"
    return 0
  fi
  "$ROOT/scripts/kafka-node.sh" running "$BROKER_DIR" || log "starting Apache Kafka $KAFKA_VERSION on $BROKER_ADDR"
  "$ROOT/scripts/kafka-node.sh" start "$BROKER_DIR" "$BROKER_PORT" "$BROKER_CONTROLLER_PORT"
}

broker_down() {
  if "$ROOT/scripts/kafka-node.sh" running "$BROKER_DIR"; then
    "$ROOT/scripts/kafka-node.sh" stop "$BROKER_DIR"
    log "broker stopped"
  fi
}

postgres_down() {
  if [[ -f "$PG_DIR/data/postmaster.pid" ]]; then
    as_pg_user "$PG_DIR" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast stop >/dev/null && log "local PostgreSQL stopped"
  fi
}

# The pipeline's own database, `continuity`, on the server at $1 (created if missing).
pipeline_database() {
  local admin=$1
  if [[ "$(psql "$admin" -qAtX -c "select 1 from pg_database where datname = 'continuity'")" != 1 ]]; then
    psql "$admin" -qAtX -c "create database continuity" >/dev/null
  fi
  echo "${admin%/*}/continuity"
}

# DATABASE_URL: the server's admin database (tests create their own databases from it).
# CONTINUITY_DATABASE_URL: the pipeline's database.
write_env() {
  mkdir -p "$STACK_DIR"
  cat >"$ENV_FILE" <<ENV
export DATABASE_URL=$1
export CONTINUITY_DATABASE_URL=$(pipeline_database "$1")
export CONTINUITY_BROKERS=${CONTINUITY_BROKERS:-$BROKER_ADDR}
ENV
}

SERVICES=(worklist dev-issuer ingest reporter matcher)

# Stop a service run.sh started ($1: ingest, matcher or reporter): SIGTERM, then SIGKILL
# after 20 s. The matcher finishes its batch and hands back its leases on SIGTERM.
service_stop() {
  local pid_file="$STACK_DIR/$1.pid"
  if [[ -f "$pid_file" ]] && kill -0 "$(cat "$pid_file")" 2>/dev/null; then
    kill -TERM "$(cat "$pid_file")" || true
    wait_for 20 bash -c "! kill -0 $(cat "$pid_file") 2>/dev/null" || kill -9 "$(cat "$pid_file")" 2>/dev/null || true
    log "$1 stopped"
  fi
  rm -f "$pid_file"
}

services_stop() {
  local s
  for s in "${SERVICES[@]}"; do service_stop "$s"; done
}

case "${1:-status}" in
  up)
    mkdir -p "$STACK_DIR"
    db_url="$(postgres_up)"
    broker_up
    write_env "$db_url"
    log "up: PostgreSQL at ${db_url%%/postgres}, broker at ${CONTINUITY_BROKERS:-$BROKER_ADDR} (env in $ENV_FILE)"
    ;;
  down)
    services_stop
    broker_down
    postgres_down
    ;;
  stop)
    [[ " ${SERVICES[*]} " == *" ${2:-} "* ]] || die "usage: scripts/stack.sh stop ingest|matcher|reporter|worklist|dev-issuer"
    service_stop "$2"
    ;;
  reset)
    services_stop
    broker_down
    postgres_down
    rm -rf "$STACK_DIR"
    ;;
  env)
    [[ -f "$ENV_FILE" ]] || die "stack not started; run scripts/stack.sh up"
    cat "$ENV_FILE"
    ;;
  status)
    url="${DATABASE_URL:-$DEFAULT_DATABASE_URL}"
    if pg_answers "$url"; then echo "postgres  up    $url"
    elif pg_answers "postgres://postgres@127.0.0.1:$PG_LOCAL_PORT/postgres"; then
      echo "postgres  up    postgres://postgres@127.0.0.1:$PG_LOCAL_PORT/postgres (local cluster, $PG_DIR)"
    else echo "postgres  down"; fi
    if external_broker; then echo "broker    given $CONTINUITY_BROKERS (CONTINUITY_BROKERS)"
    elif "$ROOT/scripts/kafka-node.sh" running "$BROKER_DIR"; then
      echo "broker    up    $BROKER_ADDR (Apache Kafka $KAFKA_VERSION, pid $(cat "$BROKER_DIR/kafka.pid"), log $BROKER_DIR/server.log)"
    elif port_open "$BROKER_HOST" "$BROKER_PORT"; then echo "broker    up    $BROKER_ADDR (not started by this script)"
    else echo "broker    down"; fi
    [[ -f "$KAFKA_HOME/libs/.complete" ]] || echo "kafka     not installed (scripts/install-broker.sh resolves it)"
    for svc in "${SERVICES[@]}"; do
      pid_file="$STACK_DIR/$svc.pid"
      if [[ -f "$pid_file" ]] && kill -0 "$(cat "$pid_file")" 2>/dev/null; then
        printf '%-9s up    pid %s, log %s\n' "$svc" "$(cat "$pid_file")" "$STACK_DIR/$svc.log"
      else printf '%-9s down\n' "$svc"; fi
    done
    ;;
  *)
    die "usage: scripts/stack.sh up|down|status|env|reset|stop SERVICE"
    ;;
esac
