#!/usr/bin/env bash
# An S3-compatible server: versitygw (Apache-2.0) with its posix backend on a directory this
# script owns, built once with `go install`.
#   scripts/infra/s3.sh start|stop|status|env
# Listens on 127.0.0.1:$S3_PORT (default 27070), access key `dither`, secret `dither-secret-key`,
# region us-east-1, with the bucket `dither` created. `env` prints the S3_* variables the services
# read.
source "$(dirname "$0")/common.sh"

VERSION=v1.8.0
PORT=${S3_PORT:-27070}
ACCESS_KEY=dither
SECRET_KEY=dither-secret-key
REGION=us-east-1
BUCKET=dither
DIR=$RUN_DIR/s3
BIN=$CACHE_DIR/versitygw-$VERSION/versitygw
PID=$DIR/versitygw.pid
EMPTY_SHA256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855

build_versitygw() {
  log "s3: building versitygw $VERSION with go install (once, about a minute)"
  GOBIN=$(dirname "$BIN") GOFLAGS=-mod=mod "$GO" install \
    "github.com/versity/versitygw/cmd/versitygw@$VERSION" >"$(dirname "$BIN")/build.log" 2>&1 ||
    die "s3: go install failed, see $(dirname "$BIN")/build.log"
}

install() { build_once "$BIN" versitygw build_versitygw; }

# s3_request METHOD PATH: a signed request without a body; prints the HTTP status.
s3_request() {
  local method=(-X "$1")
  [[ $1 == HEAD ]] && method=(--head)
  curl -s -o /dev/null -w '%{http_code}' "${method[@]}" --aws-sigv4 "aws:amz:$REGION:s3" \
    --user "$ACCESS_KEY:$SECRET_KEY" -H "x-amz-content-sha256: $EMPTY_SHA256" \
    "http://127.0.0.1:$PORT/$2" || true
}

start() {
  if pid_alive "$PID" versitygw; then
    log "s3: already running on port $PORT"
    return 0
  fi
  install
  mkdir -p "$DIR/data" "$DIR/meta"
  port_open "$PORT" && die "s3: port $PORT is taken by another process"
  ROOT_ACCESS_KEY=$ACCESS_KEY ROOT_SECRET_KEY=$SECRET_KEY nohup "$BIN" --port "127.0.0.1:$PORT" \
    posix --sidecar "$DIR/meta" "$DIR/data" >>"$DIR/server.log" 2>&1 </dev/null &
  echo $! >"$PID"
  wait_port "$PORT" 30 "$(cat "$PID")" || die "s3: versitygw did not start, see $DIR/server.log"
  local status
  status=$(s3_request HEAD "$BUCKET")
  if [[ $status != 200 ]]; then
    status=$(s3_request PUT "$BUCKET")
    [[ $status == 200 ]] || die "s3: creating bucket $BUCKET failed (HTTP $status)"
  fi
  log "s3: ready on http://127.0.0.1:$PORT (versitygw $VERSION, bucket $BUCKET)"
}

stop() {
  if pid_alive "$PID" versitygw; then
    stop_pid "$PID" 10 versitygw
    log "s3: stopped"
  fi
}

case ${1:-} in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) if pid_alive "$PID" versitygw; then echo "s3: running on port $PORT"; else echo "s3: stopped"; exit 1; fi ;;
  env)
    echo "S3_ENDPOINT=http://127.0.0.1:$PORT"
    echo "S3_REGION=$REGION"
    echo "S3_BUCKET=$BUCKET"
    echo "S3_ACCESS_KEY=$ACCESS_KEY"
    echo "S3_SECRET_KEY=$SECRET_KEY"
    ;;
  *) die "usage: s3.sh install|start|stop|status|env" ;;
esac
