#!/usr/bin/env bash
# The image's smoke test (scripts/containers.sh smoke, for CI): ditherd alone in a container of
# IMAGE, published on 127.0.0.1:PORT: it runs as a non-root user, its HEALTHCHECK passes (and
# fails when the path it asks for is wrong: the check can fail), one upload is dithered and the
# result downloaded, the command-line tool runs, and the container stops cleanly on SIGTERM.
#   tests/containers/smoke_test.sh IMAGE PORT
set -euo pipefail
image=$1
port=$2
TEST_NAME=smoke
# shellcheck source=tests/containers/lib.sh
source "$(dirname "$0")/lib.sh"

name=dither-smoke-$$
# The EXIT trap of lib.sh removes the work directory; this one removes the container too.
trap 'podman rm -f -v "$name" >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT

# The image's settings: who runs, what is checked, where the data goes.
config=$(podman image inspect --format '{{.Config.User}}|{{json .Config.Healthcheck.Test}}|{{json .Config.Volumes}}' "$image")
[[ $config == 'dither|["CMD","dither-healthcheck"]|{"/var/lib/dither":{}}' ]] ||
  fail "image settings are '$config'"

# --health-interval=disable: no timer (it needs systemd); `podman healthcheck run` still runs it.
podman run -d --name "$name" --health-interval=disable -p "127.0.0.1:$port:8080" \
  -e "PUBLIC_BASE_URL=http://127.0.0.1:$port" "$image" ditherd >/dev/null
health_check "$name" 60
say "health check passes"
if podman exec "$name" dither-healthcheck /health/no-such-path 2>/dev/null; then
  fail "the health check passed on a path that does not exist"
fi
uid=$(podman exec "$name" id -u)
[[ $uid != 0 ]] || fail "ditherd runs as root"
# The program is PID 1 (it receives podman's signals itself).
[[ $(podman exec "$name" cat /proc/1/comm) == ditherd ]] || fail "PID 1 is not ditherd"

key=$(podman exec "$name" dither-keys create --name smoke 2>/dev/null)
[[ $key == dk_* ]] || fail "dither-keys printed no key"
upload_and_dither "http://127.0.0.1:$port" "$key" >/dev/null

podman run --rm "$image" dither --list >/dev/null 2>&1 || fail "the dither tool does not run"

start=$SECONDS
podman stop -t 20 "$name" >/dev/null
exit_code=$(podman inspect --format '{{.State.ExitCode}}' "$name")
[[ $exit_code == 0 ]] || fail "ditherd exited with $exit_code on SIGTERM"
say "passed (ditherd as uid $uid, stopped cleanly in $((SECONDS - start)) s)"
