#!/usr/bin/env bash
# A single-node Apache Kafka 3.9 broker in KRaft mode (broker and controller in one JVM), from the
# jars Maven resolves for org.apache.kafka:kafka_2.13 (no Docker, no tarball).
#   scripts/infra/kafka.sh start|stop|status|env
# Listens on 127.0.0.1:$KAFKA_PORT (default 29092; the controller on KAFKA_PORT+1). New topics get
# KAFKA_PARTITIONS partitions (default 2). Kafka 4.x is not used: it dropped protocol versions
# Debian's librdkafka 2.0 needs.
source "$(dirname "$0")/common.sh"

VERSION=3.9.1
PORT=${KAFKA_PORT:-29092}
CONTROLLER_PORT=$((PORT + 1))
PARTITIONS=${KAFKA_PARTITIONS:-2}
DIR=$RUN_DIR/kafka
LIBS=$CACHE_DIR/kafka-$VERSION/libs
PID=$DIR/kafka.pid

install() {
  [[ -f $LIBS/.complete ]] && return 0
  # One download at a time, whoever asks (several test runs may start at once).
  exec 9>"$CACHE_DIR/kafka.lock"
  flock 9
  if [[ -f $LIBS/.complete ]]; then
    exec 9>&-
    return 0
  fi
  command -v mvn >/dev/null || die "kafka: Maven is not installed (scripts/setup.sh installs it)"
  command -v java >/dev/null || die "kafka: Java is not installed (scripts/setup.sh installs it)"
  log "kafka: resolving Kafka $VERSION jars with Maven (once)"
  local work=$CACHE_DIR/kafka-$VERSION
  mkdir -p "$work"
  cat >"$work/pom.xml" <<POM
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dither.infra</groupId>
  <artifactId>kafka-broker</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>$VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.slf4j</groupId>
      <artifactId>slf4j-reload4j</artifactId>
      <version>1.7.36</version>
    </dependency>
  </dependencies>
</project>
POM
  rm -rf "$LIBS"
  (cd "$work" && mvn -q -B dependency:copy-dependencies -DoutputDirectory="$LIBS" \
    -DincludeScope=runtime) >"$work/mvn.log" 2>&1 || die "kafka: Maven failed, see $work/mvn.log"
  touch "$LIBS/.complete"
  exec 9>&- # the broker must not inherit the lock
}

configure() {
  mkdir -p "$DIR/data"
  cat >"$DIR/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$DIR/data
num.partitions=$PARTITIONS
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours=168
PROPS
  cat >"$DIR/log4j.properties" <<LOG
log4j.rootLogger=WARN, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=$DIR/server.log
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka=INFO
log4j.logger.org.apache.kafka=WARN
LOG
}

java_cmd() {
  java -Xms256m -Xmx512m -Dlog4j.configuration="file:$DIR/log4j.properties" \
    -cp "$LIBS/*" "$@"
}

start() {
  if pid_alive "$PID" kafka.Kafka; then
    log "kafka: already running on port $PORT"
    return 0
  fi
  install
  configure
  if [[ ! -f $DIR/data/meta.properties ]]; then
    local id
    id=$(java_cmd kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)
    java_cmd kafka.tools.StorageTool format -t "$id" -c "$DIR/server.properties" \
      >"$DIR/format.log" 2>&1 || die "kafka: formatting the log directory failed, see $DIR/format.log"
  fi
  port_open "$PORT" && die "kafka: port $PORT is taken by another process"
  nohup java -Xms256m -Xmx512m -Dlog4j.configuration="file:$DIR/log4j.properties" \
    -Dkafka.logs.dir="$DIR" -cp "$LIBS/*" kafka.Kafka "$DIR/server.properties" \
    >>"$DIR/stdout.log" 2>&1 </dev/null &
  echo $! >"$PID"
  if ! wait_port "$PORT" 90 "$(cat "$PID")"; then
    tail -20 "$DIR/server.log" "$DIR/stdout.log" >&2 || true
    die "kafka: did not start, see $DIR/server.log"
  fi
  # The port opens before the broker serves metadata: wait until it answers a client.
  local deadline=$((SECONDS + 60))
  until kcat -L -b "127.0.0.1:$PORT" -m 5 >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "kafka: broker does not answer metadata requests"
    sleep 0.3
  done
  log "kafka: ready on 127.0.0.1:$PORT (Kafka $VERSION, KRaft)"
}

stop() {
  if pid_alive "$PID" kafka.Kafka; then
    stop_pid "$PID" 60 kafka.Kafka
    log "kafka: stopped"
  fi
}

case ${1:-} in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) if pid_alive "$PID" kafka.Kafka; then echo "kafka: running on port $PORT"; else echo "kafka: stopped"; exit 1; fi ;;
  env) echo "KAFKA_SERVER=127.0.0.1:$PORT" ;;
  *) die "usage: kafka.sh install|start|stop|status|env" ;;
esac
