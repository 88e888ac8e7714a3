#!/usr/bin/env bash
# Runs the end-to-end test of the web page (tests/e2e) against a built ditherd: Debian's Chromium
# (installed here when missing), driven by playwright-core from npm (pinned in
# tests/e2e/package-lock.json; Playwright's own browser download is never used), on a real photo
# from Debian's mate-backgrounds package. Screenshots go to build/e2e/screenshots: look at them.
#   scripts/e2e.sh [path/to/ditherd]
set -euo pipefail
cd "$(dirname "$0")/.."

binary=${1:-build/release/src/app/ditherd}
work=build/e2e
mkdir -p "$work"

SUDO=""
[[ $(id -u) -ne 0 ]] && SUDO="sudo"
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  if [[ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mtime -1 2>/dev/null | head -1)" ]]; then
    $SUDO apt-get update -qq
  fi
  $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
# The browser, and Node.js with npm unless the machine already has them (some ship their own).
[[ -x /usr/bin/chromium ]] || { echo "e2e: installing chromium" >&2; apt_install chromium; }
command -v npm >/dev/null || { echo "e2e: installing nodejs npm" >&2; apt_install nodejs npm; }

# playwright-core, exactly as locked.
if [[ ! -f tests/e2e/node_modules/.package-lock.json ]] ||
   ! cmp -s tests/e2e/package-lock.json "$work/package-lock.json"; then
  (cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error)
  cp tests/e2e/package-lock.json "$work/package-lock.json"
fi

# A real photo: Debian's mate-backgrounds (as scripts/bench.sh), scaled to 1600 px.
photo=$work/ladybird.jpg
if [[ ! -f $photo ]]; then
  deb_dir=$work/deb
  mkdir -p "$deb_dir"
  if ! ls "$deb_dir"/mate-backgrounds_*.deb >/dev/null 2>&1; then
    (cd "$deb_dir" && apt-get download mate-backgrounds 2>/dev/null) || {
      $SUDO apt-get update -qq
      (cd "$deb_dir" && apt-get download mate-backgrounds)
    }
  fi
  rm -rf "$deb_dir/x"
  dpkg-deb -x "$(ls "$deb_dir"/mate-backgrounds_*.deb | sort | tail -1)" "$deb_dir/x"
  src=$(find "$deb_dir/x" -iname 'LadyBird.jpg' | head -1)
  [[ -n $src ]] || src=$(find "$deb_dir/x" -iname '*.jpg' | sort | head -1)
  convert "$src" -resize '1600x1600>' -quality 88 "$photo"
  rm -rf "$deb_dir/x"
fi

DITHERD=$PWD/$binary E2E_PHOTO=$PWD/$photo E2E_OUT=$PWD/$work/screenshots \
  exec node --test --test-reporter=spec tests/e2e/
