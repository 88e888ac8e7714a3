#!/usr/bin/env bash
# The Helm chart (deploy/helm/dither, docs/KUBERNETES.md): helm itself, lint, render, test.
#   scripts/helm.sh install          build helm v4.3.2 once with `go install` (cached), print its path
#   scripts/helm.sh lint             `helm lint --strict` with the default values and with the
#                                    production-like values (deploy/helm/dither/ci/production-values.yaml)
#   scripts/helm.sh template [ARGS]  `helm template dither deploy/helm/dither ARGS...` (e.g. -f my.yaml)
#   scripts/helm.sh test [PYTEST ARGS]  tests/deploy/test_helm.py: the lint above, then the chart
#                                    rendered with several value sets and every Deployment's
#                                    environment, probes, secrets, ports, the HPA, the ServiceMonitor
#                                    checked (what CI runs)
# No cluster is needed or contacted: everything is rendered locally (`helm template`).
# helm is built from source into $DITHER_INFRA_CACHE/helm-v4.3.2 (default build/infra/cache) with
# the machine's Go and its default module proxy; a flock lets parallel callers build it once.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

VERSION=v4.3.2
CHART=$root/deploy/helm/dither
PRODUCTION_VALUES=$CHART/ci/production-values.yaml
source scripts/infra/common.sh # CACHE_DIR, build_once
HELM=$CACHE_DIR/helm-$VERSION/helm

die() {
  echo "helm.sh: $*" >&2
  exit 1
}

build_helm() {
  echo "helm.sh: building helm $VERSION with go install (once, a few minutes)" >&2
  local dir
  dir=$(dirname "$HELM")
  # Into a temporary directory first: a build cut short never leaves a half-written binary behind.
  rm -rf "$dir.tmp"
  mkdir -p "$dir.tmp"
  GOBIN=$dir.tmp GOFLAGS=-mod=mod "$GO" install "helm.sh/helm/v4/cmd/helm@$VERSION" \
    >"$dir/build.log" 2>&1 || die "go install failed, see $dir/build.log"
  mv "$dir.tmp/helm" "$HELM"
  rmdir "$dir.tmp"
}

install() { build_once "$HELM" helm build_helm; }

# helm with its configuration, cache and data under build/, never the caller's home: rendering a
# local chart needs no repositories, and nothing here should read or change a user's helm setup.
run_helm() {
  install
  local home=$root/build/helm-home
  mkdir -p "$home"
  HELM_CONFIG_HOME=$home/config HELM_CACHE_HOME=$home/cache HELM_DATA_HOME=$home/data \
    "$HELM" "$@"
}

lint() {
  [[ -f $PRODUCTION_VALUES ]] || die "$PRODUCTION_VALUES is missing"
  run_helm lint --strict "$CHART"
  run_helm lint --strict "$CHART" -f "$PRODUCTION_VALUES"
}

# A Python with pytest and PyYAML: the functional tests' venv when it has PyYAML, else a small
# venv of this script's own (build/helm-venv), so that the chart's test never changes theirs.
test_python() {
  local shared=$root/build/test-venv/bin/python
  if [[ -x $shared ]] && "$shared" -c 'import pytest, yaml' 2>/dev/null; then
    echo "$shared"
    return 0
  fi
  local venv=$root/build/helm-venv
  local wanted="pytest==8.3.5 PyYAML==6.0.2"
  if [[ ! -x $venv/bin/python || "$(cat "$venv/.requirements" 2>/dev/null)" != "$wanted" ]]; then
    rm -rf "$venv"
    python3 -m venv "$venv" >&2
    # shellcheck disable=SC2086 # the pinned requirements, split on purpose
    "$venv/bin/pip" install -q --disable-pip-version-check $wanted >&2
    echo "$wanted" >"$venv/.requirements"
  fi
  echo "$venv/bin/python"
}

case ${1:-} in
  install)
    install
    echo "$HELM"
    ;;
  lint) lint ;;
  template)
    shift
    run_helm template dither "$CHART" "$@"
    ;;
  test)
    shift
    install
    python=$(test_python)
    HELM_BIN=$HELM HELM_CONFIG_HOME=$root/build/helm-home/config \
      HELM_CACHE_HOME=$root/build/helm-home/cache HELM_DATA_HOME=$root/build/helm-home/data \
      exec "$python" -m pytest -q tests/deploy/test_helm.py "$@"
    ;;
  *)
    echo "usage: scripts/helm.sh install|lint|template [ARGS...]|test [PYTEST ARGS...]" >&2
    exit 2
    ;;
esac
