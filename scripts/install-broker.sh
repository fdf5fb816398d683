#!/usr/bin/env bash
# Install Apache Kafka $KAFKA_VERSION's broker jars from Maven Central into the per-user tool
# cache ($KAFKA_HOME/libs), resolving them with Maven (scripts/kafka/pom.xml) into a Maven
# repository of the cache's own. Idempotent: does nothing when the jars are in place; an
# interrupted install leaves only a .partial directory, replaced on the next run.
source "$(dirname "$0")/lib.sh"

[[ -f "$KAFKA_HOME/libs/.complete" ]] && exit 0
command -v "$JAVA" >/dev/null || die "no Java: Kafka $KAFKA_VERSION needs Java 17 or newer (set JAVA_HOME)"
command -v mvn >/dev/null || die "no Maven (mvn): it resolves Kafka's jars from Maven Central"
mkdir -p "$TOOLS_DIR"
partial="$KAFKA_HOME.partial"
rm -rf "$partial"
mkdir -p "$partial/libs"
log "resolving Apache Kafka $KAFKA_VERSION from Maven Central into $KAFKA_HOME"
if ! mvn -B -q -f "$ROOT/scripts/kafka/pom.xml" -Dkafka.version="$KAFKA_VERSION" \
    -Dmaven.repo.local="$TOOLS_DIR/maven-repository" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$partial/libs" >"$partial/install.log" 2>&1; then
  tail -n 20 "$partial/install.log" >&2
  die "Maven could not resolve Kafka $KAFKA_VERSION; the whole log is $partial/install.log"
fi
touch "$partial/libs/.complete"
rm -rf "$KAFKA_HOME"
mv "$partial" "$KAFKA_HOME"
log "installed Kafka $KAFKA_VERSION ($(ls "$KAFKA_HOME/libs" | wc -l) jars)"
