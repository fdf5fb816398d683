#!/usr/bin/env bash
# One Apache Kafka node (combined broker and KRaft controller) on 127.0.0.1, as a plain JVM
# process with its state under DIR. Used by scripts/stack.sh for the local stack's broker and
# by tests that need a broker of their own to stop and start.
#
#   scripts/kafka-node.sh start DIR PORT CONTROLLER_PORT [SASL_SSL_PORT [JWKS_URL]]
#                                                          format DIR once, start, wait until it answers metadata;
#                                                          with SASL_SSL_PORT also a TLS + SCRAM-SHA-256 listener
#                                                          on localhost (a CA the script makes: DIR/tls/ca.pem;
#                                                          user `continuity`, password `continuity-secret`);
#                                                          with JWKS_URL that listener also takes OAUTHBEARER
#                                                          tokens signed by a key of that set, audience `kafka`
#   scripts/kafka-node.sh stop DIR                         SIGTERM (controlled shutdown), SIGKILL after 30 s
#   scripts/kafka-node.sh kill DIR                         SIGKILL
#   scripts/kafka-node.sh running DIR                      exit 0 when the node's process is alive
#
# Idempotent: `start` on a running node only waits for it to be healthy. The jars come from
# scripts/install-broker.sh (run here when missing). Single-node settings: every replication
# factor 1, no initial rebalance delay, no topic auto-creation (the services create theirs).
# The heap is capped at $CONTINUITY_KAFKA_HEAP (default 1 GiB).
source "$(dirname "$0")/lib.sh"

usage() { die "usage: scripts/kafka-node.sh start DIR PORT CONTROLLER_PORT [SASL_SSL_PORT [JWKS_URL]] | stop DIR | kill DIR | running DIR"; }

node_pid() { cat "$1/kafka.pid" 2>/dev/null; }

node_running() {
  local pid
  pid="$(node_pid "$1")" && [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null
}

node_ready() { python3 "$ROOT/scripts/kafka/ready.py" 127.0.0.1 "$1"; }

write_config() {
  local dir=$1 port=$2 controller=$3 sasl=${4:-} jwks=${5:-}
  local listeners="PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller"
  local advertised="PLAINTEXT://127.0.0.1:$port"
  if [[ -n "$sasl" ]]; then
    listeners+=",SASL_SSL://127.0.0.1:$sasl"
    advertised+=",SASL_SSL://localhost:$sasl"
  fi
  cat >"$dir/server.properties" <<PROPERTIES
# Written by scripts/kafka-node.sh; rewritten at every start.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller
listeners=$listeners
advertised.listeners=$advertised
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL
log.dirs=$dir/data
num.partitions=6
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=6
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
PROPERTIES
  if [[ -n "$sasl" ]]; then
    cat >>"$dir/server.properties" <<PROPERTIES
sasl.enabled.mechanisms=SCRAM-SHA-256
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.ssl.keystore.type=PEM
listener.name.sasl_ssl.ssl.keystore.location=$dir/tls/server.pem
PROPERTIES
  fi
  if [[ -n "$jwks" ]]; then
    cat >>"$dir/server.properties" <<PROPERTIES
sasl.enabled.mechanisms=SCRAM-SHA-256,OAUTHBEARER
listener.name.sasl_ssl.oauthbearer.sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;
listener.name.sasl_ssl.oauthbearer.sasl.server.callback.handler.class=org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler
sasl.oauthbearer.jwks.endpoint.url=$jwks
sasl.oauthbearer.expected.audience=kafka
PROPERTIES
  fi
}

start() {
  local dir=$1 port=$2 controller=$3 sasl=${4:-} jwks=${5:-}
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  if node_running "$dir"; then
    wait_for 60 node_ready "$port" || die "Kafka (pid $(node_pid "$dir")) does not answer on 127.0.0.1:$port; see $dir/server.log"
    return 0
  fi
  "$ROOT/scripts/install-broker.sh"
  [[ -z "$sasl" ]] || test_certificates "$dir/tls"
  write_config "$dir" "$port" "$controller" "$sasl" "$jwks"
  local scram=()
  [[ -z "$sasl" ]] || scram=(--add-scram 'SCRAM-SHA-256=[name=continuity,password=continuity-secret]')
  local classpath="$KAFKA_HOME/libs/*"
  if [[ ! -f "$dir/data/meta.properties" ]]; then
    # A cluster id is 16 random bytes in URL-safe base64 without padding, as StorageTool's
    # random-uuid makes (one JVM start fewer). Like Kafka's Uuid.randomUuid, draw again when it
    # starts with '-', which the tool's argument parser would take for an option.
    local cluster="-"
    while [[ $cluster == -* ]]; do
      cluster="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
    done
    "$JAVA" -cp "$classpath" -Dlog4j2.configurationFile="$ROOT/scripts/kafka/log4j2.properties" \
      -Dkafka.logs.dir="$dir" kafka.tools.StorageTool format -t "$cluster" \
      -c "$dir/server.properties" "${scram[@]}" >>"$dir/format.log" 2>&1 \
      || die "formatting Kafka's storage failed; see $dir/format.log"
  fi
  # JVM options as Kafka's own kafka-server-start.sh sets them.
  nohup "$JAVA" -Xms256m -Xmx"${CONTINUITY_KAFKA_HEAP:-1g}" -server -XX:+UseG1GC \
    -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
    -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$ROOT/scripts/kafka/log4j2.properties" -Dkafka.logs.dir="$dir" \
    -Dorg.apache.kafka.sasl.oauthbearer.allowed.urls="$jwks" \
    -cp "$classpath" kafka.Kafka "$dir/server.properties" >>"$dir/stdout.log" 2>&1 &
  echo $! >"$dir/kafka.pid"
  if ! wait_for 90 node_ready "$port"; then
    node_running "$dir" || die "Kafka exited while starting; see $dir/server.log and $dir/stdout.log"
    die "Kafka did not answer on 127.0.0.1:$port within 90 s; see $dir/server.log"
  fi
}

stop() {
  local dir=$1 signal=$2 pid
  node_running "$dir" || { rm -f "$dir/kafka.pid"; return 0; }
  pid="$(node_pid "$dir")"
  kill "-$signal" "$pid" 2>/dev/null || true
  wait_for 30 bash -c "! kill -0 $pid 2>/dev/null" || kill -KILL "$pid" 2>/dev/null || true
  wait_for 10 bash -c "! kill -0 $pid 2>/dev/null" || true
  rm -f "$dir/kafka.pid"
}

case "${1:-}" in
  start) [[ $# -ge 4 && $# -le 6 ]] || usage; start "$2" "$3" "$4" "${5:-}" "${6:-}" ;;
  stop) [[ $# -eq 2 ]] || usage; stop "$2" TERM ;;
  kill) [[ $# -eq 2 ]] || usage; stop "$2" KILL ;;
  running) [[ $# -eq 2 ]] || usage; node_running "$2" ;;
  *) usage ;;
esac
