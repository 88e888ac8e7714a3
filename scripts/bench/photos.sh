#!/usr/bin/env bash
# The benchmarks' photos: Debian's mate-backgrounds package, downloaded once and unpacked into
# DIR (default build/bench-data; never committed). Prints the unpacked directory, then the .deb.
#
#   read -r photos deb < <(scripts/bench/photos.sh build/bench-data)
set -euo pipefail
data=${1:-build/bench-data}
mkdir -p "$data"
if ! ls "$data"/mate-backgrounds_*.deb >/dev/null 2>&1; then
  (cd "$data" && apt-get download mate-backgrounds >&2) || {
    # A fresh machine may have no package lists yet.
    SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
    $SUDO apt-get update -qq >&2
    (cd "$data" && apt-get download mate-backgrounds >&2)
  }
fi
deb=$(ls "$data"/mate-backgrounds_*.deb | sort | tail -1)
if [[ ! -d "$data/mate-backgrounds" || "$deb" -nt "$data/mate-backgrounds" ]]; then
  rm -rf "$data/mate-backgrounds"
  dpkg-deb -x "$deb" "$data/mate-backgrounds"
  touch "$data/mate-backgrounds"
fi
echo "$data/mate-backgrounds $deb"
