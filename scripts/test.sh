#!/usr/bin/env bash
# Sets up, builds and runs every test: the Release build's unit tests (with the adapters' contract
# tests against real PostgreSQL, Kafka and S3 servers, which ctest starts and stops through
# scripts/infra/), the functional tests (the real program over HTTP) and the distributed tests
# (one process per service on those servers, with Prometheus and Jaeger), the deployment files
# (alert rules, dashboard, Helm chart), the container image's smoke test (podman), the web page's
# end-to-end test (headless Chromium), the API tester, the abuse soak's and the benchmarks' short
# modes; then the unit, functional and end-to-end tests again under AddressSanitizer +
# UndefinedBehaviorSanitizer. This is what CI runs (.ci/run).
#   scripts/test.sh             everything
#   scripts/test.sh --quick     Release build only
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
[[ ${1:-} == --quick ]] && quick=1

# Each stage's heading says when it began (minutes:seconds since the start), so that a slow stage
# shows in the log; the last line gives the total.
stage() { printf '== [%d:%02d] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*"; }
trap 'stage "done (exit $?)"' EXIT

stage "Setup and lint"
scripts/setup.sh
scripts/lint.sh --format

stage "Release build and tests"
scripts/build.sh release
if ((quick == 0)); then
  # The sanitizer build of the last stages (clang; it holds the fuzz targets too) starts now, at
  # the lowest priority: most of the stages below wait on servers and sockets and leave the cores
  # idle, and a test that needs a core gets it first. In a session of its own, so that an early
  # exit stops it whole.
  mkdir -p build
  setsid nice -n 19 scripts/build.sh sanitize >build/background-builds.log 2>&1 &
  background=$!
  # `|| true`: set -e holds inside the trap too, and the group is gone when the builds are done.
  trap 'rc=$?; kill -- -"$background" 2>/dev/null || true; stage "done (exit $rc)"' EXIT
fi
ctest --test-dir build/release --output-on-failure -j "$(nproc)"

stage "Functional tests: ditherd over HTTP"
scripts/functional.sh build/release/src/app/ditherd

stage "Distributed tests: PostgreSQL, Kafka, S3 and one process per service"
scripts/distributed.sh build/release/src/app

stage "Deployment files: Prometheus's rules and their tests, the dashboard, the Helm chart (docs/OPERATIONS.md)"
scripts/infra/prometheus.sh check
build/test-venv/bin/python -m pytest -q tests/deploy/test_dashboard.py
scripts/helm.sh test

stage "Container image (smoke): a Debian base made here, the programs in it, one upload (docs/CONTAINERS.md)"
scripts/containers.sh smoke

stage "End-to-end test of the web page: ditherd and headless Chromium"
scripts/e2e.sh build/release/src/app/ditherd

stage "API tester (Schemathesis)"
scripts/schemathesis.sh build/release/src/app/ditherd  # API tester, ~2.5 min (docs/API-TESTING.md)

stage "Abuse soak (smoke): well-behaved clients beside an abuser (docs/BENCHMARKS.md)"
scripts/soak.sh --smoke build/release/src/app/ditherd
stage "Load test (smoke): vegeta uploads to both modes; every accepted upload FINISHED, no duplicates (docs/BENCHMARKS.md)"
scripts/load.sh --smoke

# Benchmarks' smoke modes: a broken benchmark is a red CI; no figure is judged here.
stage "Command-line benchmark (smoke): ours, Pillow and ImageMagick on a tiny image"
scripts/bench_cli.sh --smoke
stage "Services benchmark (--quick): gateway, nginx and upload-to-FINISHED, about a minute"
scripts/bench_services.sh --quick
stage "Engine benchmark (smoke): ours, Pillow, ImageMagick and the quality figure, small image"
scripts/bench.sh --smoke
stage "Distributed benchmark (smoke): ditherd vs the stack, a few uploads per step, about 45 s"
scripts/bench_distributed.sh --smoke

if ((quick == 0)); then
  stage "Waiting for the sanitizer build (with the fuzz targets) begun in the background"
  if ! wait "$background"; then
    tail -n 60 build/background-builds.log >&2
    echo "test.sh: a background build failed (all of it in build/background-builds.log)" >&2
    exit 1
  fi
  stage "Fuzzing (smoke)"
  scripts/fuzz.sh --smoke  # libFuzzer targets of the clang sanitizer build, 20 s each (docs/FUZZING.md)
  stage "AddressSanitizer + UndefinedBehaviorSanitizer build and tests"
  scripts/build.sh sanitize
  # Leak checking stays on; glib and libvips keep process-lifetime caches that LSan reports, which
  # the suppressions file names.
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1"
  export LSAN_OPTIONS="suppressions=$PWD/scripts/lsan.supp:print_suppressions=0"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
  ctest --test-dir build/sanitize --output-on-failure -j "$(nproc)"

  stage "Functional tests: ditherd under AddressSanitizer + UndefinedBehaviorSanitizer"
  # The same suite; a sanitizer report on the server's stderr fails the test that caused it.
  DITHER_TEST_TIMEOUT_SCALE=4 scripts/functional.sh build/sanitize/src/app/ditherd

  stage "End-to-end test of the web page: ditherd under AddressSanitizer + UndefinedBehaviorSanitizer"
  E2E_TIMEOUT_SCALE=4 scripts/e2e.sh build/sanitize/src/app/ditherd
fi
