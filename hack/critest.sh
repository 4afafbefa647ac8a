#!/usr/bin/env bash
# Runs critest, the Kubernetes CRI validation suite (cri-tools v1.37.0),
# against a rootless lodged started as the unprivileged test user with a
# root of its own: `make conformance`. critest's images are made offline
# from busybox-static and served as registry.k8s.io and gcr.io through a
# proxy on 127.0.0.1 (tests/critest_test.go, TestCritestConformance, does
# the work; CI runs the same test on the [Conformance] tests only).
#
# Usage: hack/critest.sh [FOCUS]   (a ginkgo focus; default: every test
# but critest's benchmarks). The full log is written to
# ${LODGE_CRITEST_OUT:-bin/critest}/critest.log.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
export GOFLAGS="-tags=exclude_graphdriver_btrfs,exclude_graphdriver_devicemapper,containers_image_openpgp,seccomp"
if [[ $(id -u) -eq 0 ]]; then
	hack/setup-root.sh
	export GOMODCACHE=${GOMODCACHE:-/var/cache/lodge-go/mod}
	export LODGE_CLIENTS_DIR=${LODGE_CLIENTS_DIR:-/var/cache/lodge-clients}
	export LODGE_TEST_USER=${LODGE_TEST_USER:-lodgetest}
else
	export LODGE_CLIENTS_DIR=${LODGE_CLIENTS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/lodge-clients}
fi
hack/clients.sh "$LODGE_CLIENTS_DIR"
export LODGE_CRITEST_FOCUS=${1:-.}
export LODGE_CRITEST_OUT=${LODGE_CRITEST_OUT:-$PWD/bin/critest}
mkdir -p "$LODGE_CRITEST_OUT"
exec go test -count=1 -v -timeout 60m -run '^TestCritestConformance$' ./tests/
