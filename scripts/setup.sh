#!/usr/bin/env bash
# Installs every system dependency from Debian's packages. Idempotent: when everything is already
# installed it only runs one dpkg query and returns. Needs root (or sudo).
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build pkg-config clang-format clang-tidy
  # fuzzing (scripts/fuzz.sh): clang with its runtimes (libFuzzer, the sanitizers)
  clang libclang-rt-14-dev
  # engine image I/O
  libvips-dev libpng-dev libgif-dev libwebp-dev libdeflate-dev
  # services: HTTP (Beast/Asio, JSON, URL), embedded metadata, logging
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev libsqlite3-dev libspdlog-dev
  # distributed mode: Kafka client, PostgreSQL client, S3/Cloudinary over HTTPS (libcurl, OpenSSL)
  librdkafka-dev libpqxx-dev libcurl4-openssl-dev libssl-dev
  # the distributed gateway's allocator
  libmimalloc-dev
  # distributed mode's test servers and tools: PostgreSQL, Java + Maven (Kafka),
  # kcat (reads topics as a third party)
  postgresql postgresql-client openjdk-17-jre-headless maven kcat
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev imagemagick python3-venv wrk nginx-light
  # quality peers (scripts/quality.sh): GEGL's dither operation, pngquant (libimagequant)
  gegl pngquant
  # observability (src/observability): the Prometheus C++ client, promtool (checks the exposition)
  prometheus-cpp-dev prometheus
)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  exit 0
fi

echo "setup: installing ${missing[*]}" >&2
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
# Refresh the package lists only when they are missing or older than a day.
if [[ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mtime -1 2>/dev/null | head -1)" ]]; then
  $SUDO apt-get update -qq
fi
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
