#!/usr/bin/env bash
# The distributed stack on one machine: PostgreSQL, Kafka, an S3 server and an SMTP server
# (scripts/infra/), then one process per service: upload-service, two dithering-service workers
# in one consumer group, notification-service, and api-gateway in front.
#   scripts/stack.sh up      build (Release), start everything, print the gateway's address
#   scripts/stack.sh down    stop the services, then the servers
#   scripts/stack.sh status  what runs
#   scripts/stack.sh env     the environment the services get (secrets included: keep it private)
#   scripts/stack.sh key ARGS...   dither-keys against the stack's PostgreSQL, e.g.
#                            `scripts/stack.sh key create --name me --admin`
# Settings (environment): DITHER_STACK_DIR (state, logs, pids; default build/stack),
# DITHER_PORT (gateway, 8080), UPLOAD_SERVICE_PORT (8081), DITHER_SERVICE_PORT (first worker;
# 8082, the second worker +1), NOTIFY_SERVICE_PORT (8084), DITHER_STACK_WORKERS (2),
# DITHERD_BIN_DIR (the built programs; default build/release/src/app), and the servers'
# POSTGRES_PORT, KAFKA_PORT, S3_PORT, SMTP_PORT.
# Metrics: every process serves them on METRICS_ADDRESS=127.0.0.1:<port> from METRICS_PORT_BASE
# (default DITHER_PORT + 1384: 9464 beside the default gateway port, and apart for a stack on other
# ports): api-gateway +0, upload-service +1, notification-service +2, dithering-service-N +2+N.
# DITHER_STACK_PROMETHEUS=1 also starts a Prometheus server scraping them and evaluating
# deploy/prometheus's rules (scripts/infra/prometheus.sh; PROMETHEUS_PORT, default 29090;
# PROMETHEUS_SCRAPE_INTERVAL, default 5s); `down` stops it whatever the setting.
# Traces: DITHER_STACK_JAEGER=1 starts Jaeger first (scripts/infra/jaeger.sh: OTLP on
# JAEGER_OTLP_PORT, default 4318; its query API and page on JAEGER_QUERY_PORT, default 16686) and
# gives every process OTEL_EXPORTER_OTLP_ENDPOINT; each reports as its program's name
# (docs/TRACING.md). `down` stops it whatever the setting.
# Any other variable of the README (AUTO_DITHER_OPTIONS, LOG_LEVEL...) passes through.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

STACK_DIR=${DITHER_STACK_DIR:-$root/build/stack}
mkdir -p "$STACK_DIR"
STACK_DIR=$(cd "$STACK_DIR" && pwd)
export DITHER_INFRA_RUN=$STACK_DIR/infra
source scripts/infra/common.sh # pid_alive, stop_pid
GATEWAY_PORT=${DITHER_PORT:-8080}
UPLOAD_PORT=${UPLOAD_SERVICE_PORT:-8081}
DITHER_PORT_FIRST=${DITHER_SERVICE_PORT:-8082}
NOTIFY_PORT=${NOTIFY_SERVICE_PORT:-8084}
WORKERS=${DITHER_STACK_WORKERS:-2}
BIN_DIR=${DITHERD_BIN_DIR:-$root/build/release/src/app}
METRICS_BASE=${METRICS_PORT_BASE:-$((GATEWAY_PORT + 1384))}

# The secrets every process must share (docs/SECURITY.md), made once per stack directory unless the
# caller's environment gives them.
secrets_env() {
  local file=$STACK_DIR/secrets.env name
  if [[ ! -s $file ]]; then
    (
      umask 077
      for name in SERVICE_TOKEN LINK_SIGNING_KEYS API_KEY_PEPPER; do
        echo "$name=$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
      done >"$file.$$"
      # The first writer wins; processes starting together then read the same file.
      ln "$file.$$" "$file" 2>/dev/null || true
      rm -f "$file.$$"
    )
  fi
  while IFS='=' read -r name value; do
    [[ -n ${!name:-} ]] && value=${!name}
    echo "$name=$value"
  done <"$file"
}

service_env() {
  secrets_env
  scripts/infra/postgres.sh env
  scripts/infra/kafka.sh env
  scripts/infra/s3.sh env
  scripts/infra/smtp.sh env
  [[ ${DITHER_STACK_JAEGER:-0} != 1 ]] || scripts/infra/jaeger.sh env
  echo "DITHER_DATA_DIR=$STACK_DIR/data"
  echo "NOTIFY_SERVICE_PORT=$NOTIFY_PORT"
  echo "PUBLIC_BASE_URL=${PUBLIC_BASE_URL:-http://127.0.0.1:$GATEWAY_PORT}"
  echo "UPLOAD_SERVICE_PORT=$UPLOAD_PORT"
  echo "DITHER_SERVICE_PORT=$DITHER_PORT_FIRST"
  echo "DITHER_PORT=$GATEWAY_PORT"
}

# start NAME PROGRAM [VAR=VALUE...]: one service process in the background, its pid in a file.
start() {
  local name=$1 program=$2
  shift 2
  if pid_alive "$STACK_DIR/$name.pid" "$program"; then
    echo "stack: $name already runs"
    return 0
  fi
  (
    set -a
    # shellcheck disable=SC1090
    source <(service_env)
    set +a
    exec env "METRICS_ADDRESS=127.0.0.1:$(metrics_port "$name")" "$@" "$BIN_DIR/$program"
  ) >>"$STACK_DIR/$name.log" 2>&1 </dev/null &
  echo $! >"$STACK_DIR/$name.pid"
}

# wait_health PORT NAME: until http://127.0.0.1:PORT/health answers 200.
wait_health() {
  local deadline=$((SECONDS + 60))
  until curl -fsS -o /dev/null "http://127.0.0.1:$1/health" 2>/dev/null; do
    if ! pid_alive "$STACK_DIR/$2.pid"; then
      tail -20 "$STACK_DIR/$2.log" >&2
      echo "stack: $2 exited, see $STACK_DIR/$2.log" >&2
      exit 1
    fi
    ((SECONDS < deadline)) || {
      echo "stack: $2 does not answer on port $1" >&2
      exit 1
    }
    sleep 0.2
  done
}

# The program a stack process runs: dithering-service-2 -> dithering-service.
program_of() { [[ $1 == dithering-service-* ]] && echo dithering-service || echo "$1"; }

stop_one() { stop_pid "$STACK_DIR/$1.pid" 20 "$(program_of "$1")"; }

workers() { for ((i = 1; i <= WORKERS; i++)); do echo "dithering-service-$i"; done; }

# metrics_port NAME: where the process NAME serves its metrics.
metrics_port() {
  case $1 in
    api-gateway) echo "$METRICS_BASE" ;;
    upload-service) echo $((METRICS_BASE + 1)) ;;
    notification-service) echo $((METRICS_BASE + 2)) ;;
    dithering-service-*) echo $((METRICS_BASE + 2 + ${1#dithering-service-})) ;;
  esac
}

# What Prometheus scrapes: SERVICE/INSTANCE=ADDRESS per process (scripts/infra/prometheus.sh).
prometheus_targets() {
  local name
  for name in api-gateway upload-service $(workers) notification-service; do
    echo "$(program_of "$name")/$name=127.0.0.1:$(metrics_port "$name")"
  done
}

up() {
  if [[ ${DITHER_STACK_NO_BUILD:-0} != 1 ]]; then
    scripts/setup.sh
    scripts/build.sh release ditherd api-gateway upload-service dithering-service \
      notification-service dither-keys >/dev/null
  fi
  scripts/infra/postgres.sh start
  scripts/infra/kafka.sh start
  scripts/infra/s3.sh start
  scripts/infra/smtp.sh start
  [[ ${DITHER_STACK_JAEGER:-0} != 1 ]] || scripts/infra/jaeger.sh start
  secrets_env >/dev/null # made once, before the services start side by side
  start upload-service upload-service
  start notification-service notification-service
  local i=0 name
  for name in $(workers); do
    start "$name" dithering-service "DITHER_SERVICE_PORT=$((DITHER_PORT_FIRST + i))"
    i=$((i + 1))
  done
  # The gateway knows every worker and fails over between them.
  local instances=""
  for ((i = 0; i < WORKERS; i++)); do instances+="${instances:+,}127.0.0.1:$((DITHER_PORT_FIRST + i))"; done
  start api-gateway api-gateway "DITHER_SERVICE_HOST=$instances"
  wait_health "$UPLOAD_PORT" upload-service
  wait_health "$NOTIFY_PORT" notification-service
  i=0
  for name in $(workers); do
    wait_health "$((DITHER_PORT_FIRST + i))" "$name"
    i=$((i + 1))
  done
  wait_health "$GATEWAY_PORT" api-gateway
  if [[ ${DITHER_STACK_PROMETHEUS:-0} == 1 ]]; then
    PROMETHEUS_TARGETS=$(prometheus_targets) scripts/infra/prometheus.sh start
  fi
  echo "stack: up; gateway on http://127.0.0.1:$GATEWAY_PORT (logs and pids in $STACK_DIR)"
}

down() {
  scripts/infra/prometheus.sh stop
  stop_one api-gateway
  # Every worker that has a pid file, however many the last `up` started.
  local file
  for file in "$STACK_DIR"/dithering-service-*.pid; do
    [[ -e $file ]] && stop_one "$(basename "$file" .pid)"
  done
  stop_one upload-service
  stop_one notification-service
  scripts/infra/smtp.sh stop
  scripts/infra/jaeger.sh stop
  scripts/infra/s3.sh stop
  scripts/infra/kafka.sh stop
  scripts/infra/postgres.sh stop
  echo "stack: down"
}

status() {
  local name
  for name in upload-service $(workers) notification-service api-gateway; do
    if pid_alive "$STACK_DIR/$name.pid" "$(program_of "$name")"; then
      echo "$name: running (pid $(cat "$STACK_DIR/$name.pid"), metrics on 127.0.0.1:$(metrics_port "$name"))"
    else
      echo "$name: stopped"
    fi
  done
  scripts/infra/postgres.sh status || true
  scripts/infra/kafka.sh status || true
  scripts/infra/s3.sh status || true
  scripts/infra/smtp.sh status || true
  scripts/infra/jaeger.sh status || true
  scripts/infra/prometheus.sh status || true
}

case ${1:-} in
  up) up ;;
  down) down ;;
  status) status ;;
  env) service_env ;;
  key)
    shift
    (
      set -a
      # shellcheck disable=SC1090
      source <(service_env)
      set +a
      exec "$BIN_DIR/dither-keys" "$@"
    )
    ;;
  *)
    echo "usage: scripts/stack.sh up|down|status|env|key ARGS..." >&2
    exit 2
    ;;
esac
