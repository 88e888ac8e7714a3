#!/usr/bin/env bash
# A trace collector and viewer: Jaeger v1.75.0 (Apache-2.0), the `cmd/jaeger` program of the Go
# module github.com/jaegertracing/jaeger (Jaeger "v2", built on the OpenTelemetry collector), built
# once with `go install` and run all-in-one with in-memory storage.
#   scripts/infra/jaeger.sh install|start|stop|status|env
# Receives OTLP over HTTP on 127.0.0.1:$JAEGER_OTLP_PORT (default 4318; POST /v1/traces) and
# answers its query API and web page on 127.0.0.1:$JAEGER_QUERY_PORT (default 16686;
# GET /api/traces?service=NAME, /api/services). Nothing else listens: the configuration this
# script writes to $RUN_DIR/jaeger/config.yaml turns off gRPC, the other receivers and the
# internal telemetry ports (Jaeger's defaults listen on every address). Traces live in memory
# (at most 100000) and are gone when it stops. `env` prints OTEL_EXPORTER_OTLP_ENDPOINT for the
# programs (docs/TRACING.md). A cold build (module downloads included) took 14 minutes on a busy
# 2-core machine; the binary (121 MB) is cached in $CACHE_DIR/jaeger-$VERSION.
source "$(dirname "$0")/common.sh"

VERSION=v1.75.0
OTLP_PORT=${JAEGER_OTLP_PORT:-4318}
QUERY_PORT=${JAEGER_QUERY_PORT:-16686}
DIR=$RUN_DIR/jaeger
BIN=$CACHE_DIR/jaeger-$VERSION/jaeger
PID=$DIR/jaeger.pid

build_jaeger() {
  local out source
  out=$(dirname "$BIN")
  source=$out/src
  log "jaeger: building jaeger $VERSION with go install (once, several minutes)"
  # `go install module/cmd/jaeger@version` refuses a module whose go.mod has replace directives
  # (Jaeger's has one), so the module's source is fetched, copied out of the read-only module
  # cache, and installed from there with its own go.mod and go.sum.
  rm -rf "$source"
  (
    set -e
    dir=$("$GO" mod download -json "github.com/jaegertracing/jaeger@$VERSION" |
      sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    [[ -d $dir ]]
    cp -R "$dir" "$source"
    chmod -R u+w "$source"
    cd "$source"
    GOBIN=$out "$GO" install ./cmd/jaeger
  ) >"$out/build.log" 2>&1 || die "jaeger: building failed, see $out/build.log"
  rm -rf "$source"
}

install() { build_once "$BIN" jaeger build_jaeger; }

# Jaeger's own all-in-one configuration listens on every default port (gRPC, Zipkin, Jaeger's
# old protocols, metrics, health, sampling); this one keeps to the two ports above, on loopback,
# and exports nothing of its own.
write_config() {
  cat >"$DIR/config.yaml" <<YAML
service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: info
extensions:
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 100000
  jaeger_query:
    storage:
      traces: memstore
    enable_tracing: false
    http:
      endpoint: 127.0.0.1:$QUERY_PORT
    grpc:
      endpoint: 127.0.0.1:$((QUERY_PORT + 1))
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:$OTLP_PORT
processors:
  batch:
    timeout: 100ms
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
YAML
}

start() {
  if pid_alive "$PID" jaeger; then
    log "jaeger: already running (OTLP on port $OTLP_PORT, query on port $QUERY_PORT)"
    return 0
  fi
  install
  mkdir -p "$DIR"
  for port in "$OTLP_PORT" "$QUERY_PORT" "$((QUERY_PORT + 1))"; do
    port_open "$port" && die "jaeger: port $port is taken by another process"
  done
  write_config
  nohup "$BIN" --config "file:$DIR/config.yaml" >>"$DIR/server.log" 2>&1 </dev/null &
  echo $! >"$PID"
  if ! wait_port "$OTLP_PORT" 60 "$(cat "$PID")" || ! wait_port "$QUERY_PORT" 60 "$(cat "$PID")"; then
    die "jaeger: did not start, see $DIR/server.log"
  fi
  local deadline=$((SECONDS + 30))
  until curl -fsS -o /dev/null "http://127.0.0.1:$QUERY_PORT/api/services" 2>/dev/null; do
    ((SECONDS < deadline)) || die "jaeger: the query API does not answer, see $DIR/server.log"
    sleep 0.2
  done
  log "jaeger: ready: OTLP on http://127.0.0.1:$OTLP_PORT, query on http://127.0.0.1:$QUERY_PORT ($VERSION)"
}

stop() {
  if pid_alive "$PID" jaeger; then
    stop_pid "$PID" 10 jaeger
    log "jaeger: stopped"
  fi
}

case ${1:-} in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status)
    if pid_alive "$PID" jaeger; then
      echo "jaeger: running (OTLP on port $OTLP_PORT, query on port $QUERY_PORT)"
    else
      echo "jaeger: stopped"
      exit 1
    fi
    ;;
  env)
    echo "OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$OTLP_PORT"
    ;;
  *) die "usage: jaeger.sh install|start|stop|status|env" ;;
esac
