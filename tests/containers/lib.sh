# shellcheck shell=bash
# What the container tests share (sourced by smoke_test.sh and compose_test.sh): a test image, an
# upload through a gateway until its automatic dither is FINISHED, and checks that fail loudly.
# Needs curl and python3 on the host. Traffic goes to 127.0.0.1 only.

TEST_NAME=${TEST_NAME:-containers}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# Podman 4.3 arms a container's health check with a systemd timer and logs an error on every
# run, start and removal where there is no systemd; `podman healthcheck run` works regardless.
podman() { command podman "$@" 2> >(grep -v 'unable to get systemd connection' >&2); }

say() { echo "$TEST_NAME: $*" >&2; }
fail() {
  echo "$TEST_NAME: FAIL: $*" >&2
  exit 1
}

# json_field FIELD < JSON: one top-level field of a JSON object ("" when absent or null).
json_field() {
  python3 -c 'import json, sys
v = json.load(sys.stdin).get(sys.argv[1])
print("" if v is None else v)' "$1"
}

# make_png FILE: a 64x48 RGB gradient, made with the standard library only.
make_png() {
  python3 - "$1" <<'PY'
import struct, sys, zlib
w, h = 64, 48
rows = b"".join(b"\0" + bytes(c for x in range(w) for c in (x * 4, y * 5, (x + y) * 2 % 256))
                for y in range(h))
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
with open(sys.argv[1], "wb") as f:
    f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
PY
}

# png_size FILE: "WIDTHxHEIGHT" of a PNG file, or fails when it is not one.
png_size() {
  python3 - "$1" <<'PY'
import struct, sys
data = open(sys.argv[1], "rb").read()
if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
    sys.exit("not a PNG file")
print("%dx%d" % struct.unpack(">II", data[16:24]))
PY
}

# upload_and_dither BASE_URL KEY [EMAIL]: uploads a test PNG, waits (up to UPLOAD_WAIT_SECONDS,
# default 60) for its automatic dither to be FINISHED, downloads the result through its signed
# link and checks it is a PNG of the same size. Prints the image's uuid.
upload_and_dither() {
  local base=$1 key=$2 email=${3:-} auth
  auth=(-H "Authorization: Bearer $key")
  make_png "$WORK/in.png"
  local form=(-F "file=@$WORK/in.png;type=image/png")
  [[ -n $email ]] && form+=(-F "email=$email")
  local code
  code=$(curl -sS -o "$WORK/upload.json" -w '%{http_code}' "${auth[@]}" "${form[@]}" "$base/api/images")
  [[ $code == 201 ]] || fail "upload answered $code: $(cat "$WORK/upload.json")"
  local uuid status="" deadline=$((SECONDS + ${UPLOAD_WAIT_SECONDS:-60}))
  uuid=$(json_field uuid <"$WORK/upload.json")
  say "uploaded $uuid, waiting for its dither"
  while ((SECONDS < deadline)); do
    curl -sS -o "$WORK/image.json" "${auth[@]}" "$base/api/images/$uuid" || true
    status=$(json_field status <"$WORK/image.json" 2>/dev/null || true)
    [[ $status == FINISHED || $status == FAILED ]] && break
    sleep 0.5
  done
  [[ $status == FINISHED ]] || fail "image $uuid is '$status' after ${UPLOAD_WAIT_SECONDS:-60} s: $(cat "$WORK/image.json")"
  local link size
  link=$(json_field url_dither <"$WORK/image.json")
  [[ $link == "$base/files/"* ]] || fail "url_dither '$link' is not a link of the gateway at $base"
  code=$(curl -sS -o "$WORK/dither.png" -w '%{http_code}' "$link")
  [[ $code == 200 ]] || fail "the dither's link answered $code"
  size=$(png_size "$WORK/dither.png") || fail "the dither is not a PNG file"
  [[ $size == 64x48 ]] || fail "the dither is $size, not 64x48"
  cmp -s "$WORK/in.png" "$WORK/dither.png" && fail "the dither is the original itself"
  say "dither of $uuid FINISHED and downloaded ($size, $(stat -c %s "$WORK/dither.png") bytes)"
  echo "$uuid"
}

# health_check CONTAINER: the image's HEALTHCHECK, run now (podman runs it on a timer only where
# systemd is), until it passes or SECONDS (default 60) have passed.
#   health_check CONTAINER [SECONDS]
health_check() {
  local deadline=$((SECONDS + ${2:-60}))
  until podman healthcheck run "$1" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || fail "$1's health check does not pass: $(podman logs --tail 10 "$1" 2>&1)"
    sleep 1
  done
}
