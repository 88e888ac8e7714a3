#!/usr/bin/env bash
# Runs Schemathesis, a third-party API tester (pinned in tests/functional/schemathesis/
# requirements.txt), against a live ditherd's own /openapi.json: every phase (examples, coverage,
# fuzzing, stateful) and every check (--checks all), as three API-key callers made by dither-keys.
# docs/API-TESTING.md says what it checks, what it found, the exceptions and how long it takes.
#   scripts/schemathesis.sh [--max-examples N] [path/to/ditherd] [-- more schemathesis run options]
# ditherd runs on a free loopback port with a fresh data directory and the embedded defaults (the
# caller's DITHER_*/KAFKA_*/... variables are removed, as the functional tests do) and is stopped
# at the end. Exits non-zero when Schemathesis reports a failure or ditherd does not stop cleanly.
# Schemathesis's cache (for `st replay`) stays in build/schemathesis-run/.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

max_examples=400
binary=build/release/src/app/ditherd
extra=()
while (($#)); do
  case $1 in
    --max-examples) max_examples=${2:?--max-examples needs a number}; shift 2 ;;
    --max-examples=*) max_examples=${1#*=}; shift ;;
    -h | --help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    --) shift; extra=("$@"); break ;;
    -*) echo "schemathesis.sh: unknown option $1" >&2; exit 2 ;;
    *) binary=$1; shift ;;
  esac
done
if ! [[ $max_examples =~ ^[1-9][0-9]*$ ]]; then
  echo "schemathesis.sh: --max-examples needs a positive integer" >&2
  exit 2
fi
binary=$(realpath -m "$binary")
keys_tool=$(dirname "$binary")/dither-keys
for program in "$binary" "$keys_tool"; do
  if [[ ! -x $program ]]; then
    echo "schemathesis.sh: $program not found (scripts/build.sh release)" >&2
    exit 2
  fi
done

# A virtualenv of its own, so that Schemathesis's dependencies never change the functional tests'.
suite=$root/tests/functional/schemathesis
venv=build/schemathesis-venv
stamp=$venv/.requirements
if [[ ! -x $venv/bin/schemathesis || ! -f $stamp ]] || ! cmp -s "$suite/requirements.txt" "$stamp"; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$suite/requirements.txt"
  cp "$suite/requirements.txt" "$stamp"
fi
run_dir=$root/build/schemathesis-run
mkdir -p "$run_dir"

# The embedded defaults, whatever the caller's environment says (tests/functional/harness.py).
while IFS= read -r name; do
  case $name in
    DITHER_* | KAFKA_* | POSTGRES_* | CLOUDINARY_* | S3_* | SMTP_* | UPLOAD_SERVICE_* | NOTIFY_* | \
      MAIL_* | FETCH_* | RATE_LIMIT_* | QUOTA_* | PUBLIC_BASE_URL | MAX_UPLOAD_BYTES | MAX_PIXELS | \
      MAX_ANIMATION_FRAMES | MAX_ANIMATION_PIXELS | \
      AUTO_DITHER | AUTO_DITHER_OPTIONS | AUTO_DITHER_PRESET | PRESETS_ONLY | LOG_LEVEL | GATEWAY_* | IO_THREADS | BLOCKING_* | \
      API_KEY_PEPPER | LINK_SIGNING_KEYS | SERVICE_TOKEN | LINK_TTL_SECONDS | ALLOWED_HOSTS | \
      AUTH_CACHE_SECONDS | SESSION_LIFETIME_DAYS | MAX_PENDING_DITHERS | TRUSTED_PROXIES | \
      OUTBOX_MAX_ATTEMPTS | BODY_MIN_RATE | BODY_GRACE_SECONDS | SCHEMATHESIS_*)
      unset "$name" ;;
  esac
done < <(compgen -e)

work=$(mktemp -d "${TMPDIR:-/tmp}/dither-schemathesis.XXXXXX")
pid=
server_status=0
stop_server() {
  [[ -n $pid ]] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 150); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "schemathesis.sh: ditherd did not stop within 15 s of SIGTERM; killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  wait "$pid" 2>/dev/null || server_status=$?
  pid=
}
cleanup() {
  stop_server
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export DITHER_HOST=127.0.0.1
export DITHER_DATA_DIR=$work/data
export UPLOAD_SERVICE_PORT=0 DITHER_SERVICE_PORT=0 NOTIFY_SERVICE_PORT=0
export LOG_LEVEL=warn
# Schemathesis sends thousands of requests a minute as one owner: the default rate limits would
# answer most of them 429 (tests/functional/test_limits.py tests the limits themselves).
export RATE_LIMIT_UPLOADS=1000000 RATE_LIMIT_DITHERS=1000000 RATE_LIMIT_READS=1000000
# Generated sizes reach width=100000 with upscale=16: a small MAX_PIXELS keeps each dither quick on
# a shared 2-core machine (past it a dither is refused or FAILED, which is tested as well).
export MAX_PIXELS=1000000
mkdir -p "$DITHER_DATA_DIR"

# The callers (tests/functional/schemathesis/schemathesis.toml): two owners of their own, whose
# items the other must not reach (the object_level_authorization check), and an admin for the
# admin routes; as Web Fuzzing Commons users, which is how Schemathesis takes several identities.
make_key() {
  "$keys_tool" create --name "schemathesis-$1" "${@:2}" 2>>"$work/keys.log" ||
    { cat "$work/keys.log" >&2; return 1; }
}
alice=$(make_key alice --owner schemathesis-alice)
bob=$(make_key bob --owner schemathesis-bob)
admin=$(make_key admin --admin)
export DITHER_SCHEMATHESIS_AUTH=$work/auth.json DITHER_SCHEMATHESIS_HOOKS=$suite/hooks.py
cat >"$DITHER_SCHEMATHESIS_AUTH" <<EOF
{"schemaVersion": "0.2.0", "auth": [
  {"name": "alice", "fixedHeaders": [{"name": "Authorization", "value": "Bearer $alice"}]},
  {"name": "bob", "fixedHeaders": [{"name": "Authorization", "value": "Bearer $bob"}]},
  {"name": "admin", "fixedHeaders": [{"name": "Authorization", "value": "Bearer $admin"}]}
]}
EOF

# A free port below the kernel's ephemeral range (as tests/functional/harness.py); a port taken
# between the check and the bind makes ditherd exit, and the next attempt takes another one.
free_port() {
  python3 - <<'EOF'
import random, socket
for port in random.sample(range(20000, 26000), 200):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        print(port)
        break
EOF
}
healthy() { curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$port/health" 2>/dev/null; }
for attempt in 1 2 3; do
  port=$(free_port)
  DITHER_PORT=$port "$binary" >"$work/ditherd.log" 2>&1 &
  pid=$!
  for _ in $(seq 200); do
    kill -0 "$pid" 2>/dev/null || break
    healthy && break
    sleep 0.1
  done
  healthy && break
  stop_server
  server_status=0
  if ((attempt == 3)); then
    echo "schemathesis.sh: ditherd did not start; its log:" >&2
    tail -n 40 "$work/ditherd.log" >&2
    exit 1
  fi
done
echo "== Schemathesis $("$venv/bin/schemathesis" --version | awk '{print $NF}') against ditherd" \
  "on 127.0.0.1:$port, at most $max_examples examples per operation and phase"

status=0
started=$SECONDS
(
  cd "$run_dir"
  "$root/$venv/bin/schemathesis" --config-file "$suite/schemathesis.toml" \
    run "http://127.0.0.1:$port/openapi.json" \
    --checks all \
    --phases examples,coverage,fuzzing,stateful \
    --max-examples "$max_examples" \
    --workers 1 \
    --request-timeout 30 \
    --generation-database none \
    --no-color \
    "${extra[@]}"
) || status=$?
echo "== Schemathesis finished in $((SECONDS - started)) s with exit code $status"

stop_server
if ((server_status != 0)); then
  echo "schemathesis.sh: ditherd exited with code $server_status after SIGTERM; its log:" >&2
  tail -n 40 "$work/ditherd.log" >&2
  status=1
fi
exit "$status"
