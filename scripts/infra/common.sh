# Shared by the infra scripts (sourced). Each server script takes start|stop|status|env and keeps
# its state under $DITHER_INFRA_RUN/<server>; downloads and builds are cached in $DITHER_INFRA_CACHE
# so a second start is quick.
#   DITHER_INFRA_RUN    state (data, logs, pid files); default build/infra/run
#   DITHER_INFRA_CACHE  Kafka jars, the versitygw binary; default build/infra/cache
set -euo pipefail

INFRA_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
RUN_DIR=${DITHER_INFRA_RUN:-$INFRA_ROOT/build/infra/run}
CACHE_DIR=${DITHER_INFRA_CACHE:-$INFRA_ROOT/build/infra/cache}
mkdir -p "$RUN_DIR" "$CACHE_DIR"
RUN_DIR=$(cd "$RUN_DIR" && pwd)
CACHE_DIR=$(cd "$CACHE_DIR" && pwd)

log() { echo "infra: $*" >&2; }
die() {
  echo "infra: $*" >&2
  exit 1
}

# Whether something accepts TCP connections on 127.0.0.1:$1.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_port PORT SECONDS [PID]: until the port accepts connections; fails early if PID died.
wait_port() {
  local port=$1 seconds=$2 pid=${3:-}
  local deadline=$((SECONDS + seconds))
  until port_open "$port"; do
    if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then return 1; fi
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

# build_once BIN NAME BUILD: unless BIN exists, runs the function BUILD (with GO set to the Go
# command and BIN's directory made) under a lock, so that scripts starting together build it once.
# The servers built this way (versitygw, Jaeger) and helm are cached in CACHE_DIR.
build_once() {
  local bin=$1 name=$2 build=$3
  [[ -x $bin ]] && return 0
  exec 9>"$CACHE_DIR/$name.lock"
  flock 9
  if [[ ! -x $bin ]]; then
    GO=$(command -v go || true)
    [[ -n $GO ]] || GO=/usr/local/go/bin/go
    [[ -x $GO ]] || die "$name: Go is needed to build it (not found on PATH or in /usr/local/go)"
    mkdir -p "$(dirname "$bin")"
    "$build"
  fi
  exec 9>&- # a server started afterwards must not inherit the lock
}

# pid_alive FILE [PATTERN]: the pid in FILE names a live process (whose command line contains
# PATTERN: a pid file that outlived a reboot may name someone else's process by now).
pid_alive() {
  [[ -f $1 ]] || return 1
  local pid
  pid=$(cat "$1")
  kill -0 "$pid" 2>/dev/null || return 1
  [[ -z ${2:-} ]] || tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$2"
}

# stop_pid FILE [SECONDS [PATTERN]]: TERM, wait, then KILL.
stop_pid() {
  local file=$1 seconds=${2:-20}
  pid_alive "$file" "${3:-}" || {
    rm -f "$file"
    return 0
  }
  local pid
  pid=$(cat "$file")
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + seconds))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    log "pid $pid did not stop in ${seconds}s: killing it"
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  fi
  rm -f "$file"
}
