#!/usr/bin/env bash
# Container images of the project and the distributed stack in containers, with podman and without
# any container registry: the base image is made from Debian's packages with mmdebstrap, every
# other image is built on it (docs/CONTAINERS.md). Needs root (rootful podman).
#   scripts/containers.sh setup           install podman, buildah, podman-compose, mmdebstrap, runc,
#                                         netavark/aardvark-dns (apt) and configure podman for this
#                                         machine (/etc/containers/containers.conf.d/)
#   scripts/containers.sh base            localhost/dither-base:bookworm from mmdebstrap (once)
#   scripts/containers.sh build           the project's image, compiled in a builder stage
#   scripts/containers.sh build --prebuilt   the same image from the programs built on this
#                                         machine (build/release; the host must be bookworm too)
#   scripts/containers.sh servers         the stack's server images (Kafka, PostgreSQL, S3, SMTP,
#                                         Prometheus); the layer cache makes a rebuild quick
#   scripts/containers.sh up|down|status  the compose stack (deploy/compose/compose.yaml); `down -v`
#                                         also deletes its volumes
#   scripts/containers.sh key ARGS...     dither-keys in the stack's gateway container
#   scripts/containers.sh test [--prebuilt]  a fresh stack, one upload through it
#                                         (tests/containers/compose_test.sh), then down -v
#   scripts/containers.sh smoke           CI: base (cached), the image from build/release's programs,
#                                         ditherd alone in a container: health check, one upload
# Settings (environment): DITHER_CONTAINERS_DIR (state: secrets, TLS files, contexts; default
# build/containers), DITHER_COMPOSE_PORT (the gateway's port on 127.0.0.1, 31080),
# DITHER_SMOKE_PORT (31081), DITHER_IMAGE (localhost/dither:latest), DITHER_COMPOSE_PROJECT
# (dither), DITHER_BUILD_NICE (nice value of image builds, 10), DITHER_PROGRAMS_DIR (where
# --prebuilt takes the programs from, one folder; default build/release/src/app and src/cli),
# DITHER_KEEP_STACK=1 (test leaves the stack running).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

STATE=${DITHER_CONTAINERS_DIR:-$root/build/containers}
BASE_IMAGE=localhost/dither-base:bookworm
# Made again when this changes (how base() makes it).
BASE_RECIPE=3
IMAGE=${DITHER_IMAGE:-localhost/dither:latest}
PROJECT=${DITHER_COMPOSE_PROJECT:-dither}
COMPOSE_FILE=$root/deploy/compose/compose.yaml
COMPOSE_PORT=${DITHER_COMPOSE_PORT:-31080}
SMOKE_PORT=${DITHER_SMOKE_PORT:-31081}
NICE=${DITHER_BUILD_NICE:-10}
# The programs of the image, and where the Release build puts them.
PROGRAMS=(ditherd api-gateway upload-service dithering-service notification-service dither-keys dither)
HOST_BIN=$root/build/release/src

log() { echo "containers: $*" >&2; }
die() {
  echo "containers: $*" >&2
  exit 1
}
elapsed() { echo "$((SECONDS - $1)) s"; }

need_root() { [[ $(id -u) -eq 0 ]] || die "run as root: the images and the stack use rootful podman"; }

# --- setup -----------------------------------------------------------------------------------

SETUP_PACKAGES=(podman buildah podman-compose mmdebstrap runc netavark aardvark-dns iptables
  openssl curl python3)

# podman's defaults do not run containers here: crun refuses the hybrid cgroup layout (runc works,
# with cgroupfs since there is no systemd to manage cgroups) and the default nofile/nproc limits
# exceed the machine's hard limits ("setrlimit ... Operation not permitted"). A drop-in file
# changes those settings only and leaves containers.conf and the other drop-ins alone.
CONF_DROPIN=/etc/containers/containers.conf.d/50-dither.conf
write_podman_conf() {
  local wanted
  wanted=$(
    cat <<'CONF'
# Written by scripts/containers.sh setup (docs/CONTAINERS.md, "Podman settings").
[containers]
# The default nofile/nproc limits exceed this machine's hard limits.
default_ulimits = []

[engine]
# crun fails on the hybrid cgroup (v1 + v2) layout; no systemd manages cgroups here.
runtime = "runc"
cgroup_manager = "cgroupfs"

[network]
# netavark and aardvark-dns (containers find each other by name); the CNI file Debian's podman
# ships would otherwise be parsed, and warned about, on every command.
network_backend = "netavark"
CONF
  )
  if [[ -f $CONF_DROPIN && $(cat "$CONF_DROPIN") == "$wanted" ]]; then return 0; fi
  mkdir -p "$(dirname "$CONF_DROPIN")"
  echo "$wanted" >"$CONF_DROPIN.tmp"
  mv "$CONF_DROPIN.tmp" "$CONF_DROPIN"
  log "wrote $CONF_DROPIN"
}

setup() {
  need_root
  local missing=() p status
  for p in "${SETUP_PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [[ $status == "install ok installed" ]] || missing+=("$p")
  done
  if ((${#missing[@]} > 0)); then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if [[ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mtime -1 2>/dev/null | head -1)" ]]; then
      apt-get update -qq
    fi
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  write_podman_conf
  local runtime
  runtime=$(podman info --format '{{.Host.OCIRuntime.Name}} {{.Host.CgroupManager}}')
  [[ $runtime == "runc cgroupfs" ]] || die "podman still uses '$runtime', not 'runc cgroupfs': is another containers.conf overriding $CONF_DROPIN?"
}

# --- base image ------------------------------------------------------------------------------

# The Debian bookworm sources apt is configured with on this machine, as one-line entries
# (`deb URI SUITE COMPONENT`): the image is made from the same mirror, whatever it is.
debian_sources() {
  apt-cache policy | awk '
    $1 ~ /^[0-9]+$/ && $2 ~ /:\/\// && $NF == "Packages" { uri = $2; split($3, sc, "/"); next }
    $1 == "release" && uri != "" {
      if ($2 ~ /(^|,)o=Debian(,|$)/ && $2 ~ /(^|,)n=bookworm/) print "deb " uri " " sc[1] " " sc[2]
      uri = ""
    }' | sort -u
}

# The host's apt settings that decide whether a download works here (proxies, tolerance of an old
# snapshot's Release dates), carried into the image.
apt_options() {
  apt-config dump | grep -E '^Acquire::(https?::Proxy|Check-Valid-Until|Check-Date|Retries)[ :]' || true
}

base() {
  need_root
  if podman image exists "$BASE_IMAGE" &&
    [[ $(podman image inspect --format '{{index .Labels "dither.base.recipe"}}' "$BASE_IMAGE") == "$BASE_RECIPE" ]]; then
    return 0
  fi
  local start=$SECONDS dir=$STATE/base
  mkdir -p "$dir"
  mapfile -t sources < <(debian_sources)
  ((${#sources[@]} > 0)) || die "apt has no Debian bookworm source configured (apt-cache policy)"
  local aptopts=() line
  while IFS= read -r line; do aptopts+=("--aptopt=$line"); done < <(apt_options)
  log "making $BASE_IMAGE with mmdebstrap (minbase, about half a minute)"
  # No manual pages, documentation (but the copyright files) or translations: smaller images,
  # and the dpkg settings stay in the image for what the Containerfiles install later.
  # The merged-usr hook makes /bin, /lib... links itself: else apt picks the usrmerge package,
  # which brings perl (46 MB) into every image.
  mmdebstrap --variant=minbase --format=tar --quiet "${aptopts[@]}" \
    --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    --aptopt='APT::Install-Recommends "false"' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    bookworm "$dir/rootfs.tar" "${sources[@]}" >"$dir/mmdebstrap.log" 2>&1 ||
    die "mmdebstrap failed, see $dir/mmdebstrap.log"
  podman import -q --change 'CMD ["/bin/bash"]' --change "LABEL dither.base.recipe=$BASE_RECIPE" \
    --change "LABEL dither.project=dither" --message "Debian bookworm minbase (mmdebstrap)" \
    "$dir/rootfs.tar" "$BASE_IMAGE" >/dev/null
  rm -f "$dir/rootfs.tar"
  log "$BASE_IMAGE made in $(elapsed "$start") ($(image_size "$BASE_IMAGE"))"
}

# Images a rebuild left untagged: only this project's (labelled dither.project, which images
# built on the base inherit), nobody else's.
prune() { podman image prune -f --filter "label=dither.project=dither" >/dev/null; }

image_size() { podman image inspect --format '{{.Size}}' "$1" | awk '{printf "%.0f MB", $1 / 1e6}'; }

# --- the project's image ---------------------------------------------------------------------

# podman build with the settings every image here needs: the docker format (OCI images have no
# HEALTHCHECK), the local base, at a low priority (other work shares the cores).
build_image() {
  nice -n "$NICE" podman build --format docker --build-arg "BASE=$BASE_IMAGE" "$@"
}

build() {
  need_root
  base
  local start=$SECONDS
  mkdir -p "$STATE"
  if [[ ${1:-} == --prebuilt ]]; then
    # Only the programs and the image's scripts go into the context, not the sources.
    local ctx=$STATE/context/prebuilt p path
    rm -rf "$ctx"
    mkdir -p "$ctx/out/bin"
    for p in "${PROGRAMS[@]}"; do
      path=$HOST_BIN/app/$p
      [[ $p == dither ]] && path=$HOST_BIN/cli/$p
      [[ -n ${DITHER_PROGRAMS_DIR:-} ]] && path=$DITHER_PROGRAMS_DIR/$p
      [[ -x $path ]] || die "$path is missing: scripts/build.sh release ${PROGRAMS[*]}"
      strip -o "$ctx/out/bin/$p" "$path"
    done
    mkdir -p "$ctx/deploy/container"
    cp deploy/container/dither-healthcheck deploy/container/check-libraries "$ctx/deploy/container/"
    log "building $IMAGE from the programs in ${DITHER_PROGRAMS_DIR:-build/release}"
    build_image --target image-prebuilt --label dither.build=prebuilt \
      -f deploy/container/Containerfile -t "$IMAGE" "$ctx" >"$STATE/build.log" 2>&1 ||
      die "podman build failed, see $STATE/build.log"
  else
    log "building $IMAGE: compiles the programs in a builder stage (many minutes on 2 cores; progress in $STATE/build.log)"
    build_image --ignorefile deploy/container/containerignore --label dither.build=source \
      -f deploy/container/Containerfile -t "$IMAGE" . >"$STATE/build.log" 2>&1 ||
      die "podman build failed, see $STATE/build.log"
  fi
  prune
  log "$IMAGE built in $(elapsed "$start") ($(image_size "$IMAGE"))"
}

# --- the stack's servers ---------------------------------------------------------------------

infra_version() { sed -n 's/^VERSION=//p' "scripts/infra/$1.sh"; }

# The servers' images: Kafka and versitygw as scripts/infra/ fetch and build them for the stack on
# the host (their cache is reused), the rest from Debian's packages. The layer cache makes a
# second run quick; the Containerfile says what each holds.
servers() {
  need_root
  base
  local start=$SECONDS ctx=$STATE/context/servers kafka s3
  kafka=$(infra_version kafka)
  s3=$(infra_version s3)
  scripts/infra/kafka.sh install
  scripts/infra/s3.sh install
  local cache=${DITHER_INFRA_CACHE:-$root/build/infra/cache}
  rm -rf "$ctx" "$STATE/servers.log"
  mkdir -p "$ctx"
  cp -a "$cache/kafka-$kafka/libs" "$ctx/kafka-libs"
  rm -f "$ctx/kafka-libs/.complete"
  strip -o "$ctx/versitygw" "$cache/versitygw-$s3/versitygw"
  cp scripts/infra/smtp_sink.py deploy/compose/servers/*-entrypoint "$ctx/"
  local target tag
  for target in kafka:$kafka postgres:15 s3:$s3 smtp:latest prometheus:2.42; do
    tag=localhost/dither-${target%%:*}:${target#*:}
    build_image --target "${target%%:*}" -f deploy/compose/servers/Containerfile -t "$tag" "$ctx" \
      >>"$STATE/servers.log" 2>&1 || die "building $tag failed, see $STATE/servers.log"
  done
  prune
  log "server images ready in $(elapsed "$start")"
}

# --- the compose stack -----------------------------------------------------------------------

STACK=$STATE/compose

secret() { head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '='; }

# The stack's secrets, made once per state directory (the volumes keep data that depends on them:
# PostgreSQL's password, key hashes made with the pepper), each server given only its own.
stack_state() {
  mkdir -p "$STACK"
  chmod 0700 "$STACK"
  if [[ ! -s $STACK/services.env ]]; then
    (
      umask 077
      cat >"$STACK/services.env.tmp" <<ENV
SERVICE_TOKEN=$(secret)
LINK_SIGNING_KEYS=$(secret)
API_KEY_PEPPER=$(secret)
POSTGRES_PASSWORD=$(secret)
S3_ACCESS_KEY=dither
S3_SECRET_KEY=$(secret)
SMTP_PASSWORD=$(secret)
ENV
      mv "$STACK/services.env.tmp" "$STACK/services.env"
    )
  fi
  local -A v
  local name value
  while IFS='=' read -r name value; do v[$name]=$value; done <"$STACK/services.env"
  (
    umask 077
    echo "POSTGRES_PASSWORD=${v[POSTGRES_PASSWORD]}" >"$STACK/postgres.env"
    printf 'ROOT_ACCESS_KEY=%s\nROOT_SECRET_KEY=%s\n' "${v[S3_ACCESS_KEY]}" "${v[S3_SECRET_KEY]}" >"$STACK/s3.env"
    echo "SMTP_PASSWORD=${v[SMTP_PASSWORD]}" >"$STACK/smtp.env"
  )
  smtp_certificate
}

# The SMTP server's self-signed certificate, for its name on the stack's network; the
# notification service trusts it (SMTP_CA_FILE) and checks the name.
SMTP_UID=10025
smtp_certificate() {
  local dir=$STACK/smtp-tls
  [[ -s $dir/cert.pem && -s $dir/key.pem ]] && return 0
  mkdir -p "$dir"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=smtp" \
    -addext "subjectAltName=DNS:smtp" -keyout "$dir/key.pem" -out "$dir/cert.pem" \
    >"$dir/openssl.log" 2>&1 || die "openssl could not make the SMTP certificate, see $dir/openssl.log"
  # The key for the SMTP container's user only; the certificate for everyone.
  chown "$SMTP_UID:$SMTP_UID" "$dir/key.pem"
  chmod 0400 "$dir/key.pem"
  chmod 0644 "$dir/cert.pem"
  chmod 0755 "$dir"
}

compose() {
  DITHER_COMPOSE_STATE=$STACK DITHER_COMPOSE_PORT=$COMPOSE_PORT DITHER_IMAGE=$IMAGE \
    podman-compose -p "$PROJECT" -f "$COMPOSE_FILE" "$@"
}

# Container name of a compose service (podman-compose's naming: project_service_1).
container() { echo "${PROJECT}_$1_1"; }

# wait_gateway PORT SECONDS: until the gateway says it and the services behind it are ready
# (/health/ready; /health where that does not exist yet).
wait_gateway() {
  local port=$1 deadline=$((SECONDS + $2)) path=/health/ready code
  while true; do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$port$path" || true)
    [[ $code == 200 ]] && return 0
    [[ $code == 404 && $path == /health/ready ]] && path=/health && continue
    ((SECONDS < deadline)) || return 1
    sleep 1
  done
}

up() {
  need_root
  setup
  base
  podman image exists "$IMAGE" || build
  servers
  stack_state
  local start=$SECONDS
  log "starting the stack (project $PROJECT); podman-compose's log: $STACK/compose.log"
  compose up -d >>"$STACK/compose.log" 2>&1 || {
    tail -30 "$STACK/compose.log" >&2
    die "podman-compose up failed, see $STACK/compose.log"
  }
  if ! wait_gateway "$COMPOSE_PORT" 240; then
    status >&2 || true
    podman logs --tail 20 "$(container api-gateway)" >&2 || true
    die "the gateway is not ready on 127.0.0.1:$COMPOSE_PORT after 240 s"
  fi
  log "stack up in $(elapsed "$start"): gateway on http://127.0.0.1:$COMPOSE_PORT"
}

down() {
  need_root
  local flags=()
  [[ ${1:-} == -v ]] && flags=(-v)
  [[ -d $STACK ]] || mkdir -p "$STACK"
  compose down "${flags[@]}" >>"$STACK/compose.log" 2>&1 || die "podman-compose down failed, see $STACK/compose.log"
  # podman-compose 1.0.3 leaves the network behind.
  if podman network exists "${PROJECT}_dither"; then podman network rm "${PROJECT}_dither" >/dev/null; fi
  log "stack down${flags:+ (volumes deleted)}"
}

status() {
  podman ps -a --filter "label=io.podman.compose.project=$PROJECT" \
    --format '{{.Names}}\t{{.Status}}\t{{.Ports}}'
}

key() { podman exec "$(container api-gateway)" dither-keys "$@"; }

test_stack() {
  need_root
  local start=$SECONDS
  [[ ${1:-} == --prebuilt ]] && build --prebuilt
  # A fresh stack: the test counts mails and metrics from zero.
  down -v 2>/dev/null || true
  up
  local rc=0
  tests/containers/compose_test.sh "$PROJECT" "$COMPOSE_PORT" || rc=$?
  if ((rc != 0)); then
    status >&2 || true
  fi
  if [[ ${DITHER_KEEP_STACK:-0} != 1 ]]; then down -v; fi
  ((rc == 0)) || die "compose test failed"
  log "compose test passed in $(elapsed "$start")"
}

smoke() {
  need_root
  local start=$SECONDS
  setup
  base
  build --prebuilt
  tests/containers/smoke_test.sh "$IMAGE" "$SMOKE_PORT"
  log "smoke passed in $(elapsed "$start")"
}

case ${1:-} in
  setup) setup ;;
  base) base ;;
  build) build "${@:2}" ;;
  servers) servers ;;
  up) up ;;
  down) down "${@:2}" ;;
  status) status ;;
  key) key "${@:2}" ;;
  test) test_stack "${@:2}" ;;
  smoke) smoke ;;
  *)
    echo "usage: scripts/containers.sh setup|base|build [--prebuilt]|servers|up|down [-v]|status|key ARGS...|test [--prebuilt]|smoke" >&2
    exit 2
    ;;
esac
