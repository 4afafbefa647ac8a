#!/usr/bin/env bash
# Runs every lodge test: unit, kernel and end-to-end.
#
# As root (CI, or a fresh machine): sets the machine up (hack/setup-root.sh),
# runs the unit and kernel tests as the unprivileged user lodgetest, and the
# end-to-end tests with every daemon and client run as lodgetest (the test
# process stays root only to switch users and to check that other users are
# refused).
# As a normal user: runs everything as that user.
set -euo pipefail
cd "$(dirname "$0")/.."
# Under CI a test that cannot run fails instead of skipping
# (internal/testgate); .ci/run sets this itself too.
if [[ -n ${CI:-} ]]; then
	export LODGE_TEST_STRICT=${LODGE_TEST_STRICT:-1}
fi
repo=$PWD
# hack/test.sh torture (make torture): only the end-to-end torture suite.
only=${1:-}
# CI (.ci/run sets LODGE_TEST_STRICT) runs the torture suite with
# everything else, bounded so the whole run stays well under 20 minutes;
# make torture runs it in full.
if [[ -n ${CI:-}${LODGE_TEST_STRICT:-} && $only != torture ]]; then
	export LODGE_TORTURE_ROUNDS=${LODGE_TORTURE_ROUNDS:-10} LODGE_TORTURE_SECONDS=${LODGE_TORTURE_SECONDS:-20}
fi
e2e=(-count=1 -v -timeout 60m)
if [[ $only == torture ]]; then
	e2e+=(-run TestTorture)
fi
export PATH=/usr/local/go/bin:$PATH
# go.podman.io/storage's drivers lodge does not use need C libraries; seccomp
# makes libcontainer load the default profile (libseccomp, through cgo).
export GOFLAGS="-tags=exclude_graphdriver_btrfs,exclude_graphdriver_devicemapper,containers_image_openpgp,seccomp"

if [[ $(id -u) -ne 0 ]]; then
	export LODGE_CLIENTS_DIR=${LODGE_CLIENTS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/lodge-clients}
	hack/clients.sh "$LODGE_CLIENTS_DIR"
	if [[ $only == torture ]]; then
		exec go test "${e2e[@]}" ./tests/
	fi
	go vet ./...
	go test -count=1 ./...
	exit
fi

hack/setup-root.sh

# One read-only module cache for root and the test user, filled once.
export GOMODCACHE=${GOMODCACHE:-/var/cache/lodge-go/mod}
install -d -m 0755 "$(dirname "$GOMODCACHE")"
go mod download
chmod -R a+rX "$GOMODCACHE"

test -z "$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
go vet ./...
# No dropped errors in the packages make lint checks (the Makefile's
# LINT_ERRCHECK and ERRCHECK: one list, read from there).
make -s lint-errcheck

# The unit and kernel tests run as lodgetest from its own copy of the tree
# (the checkout may sit where lodgetest cannot read).
src=/home/lodgetest/lodge-src
rm -rf "$src"
mkdir -p "$src"
tar -C "$repo" --exclude=./.git --exclude=./bin -cf - . | tar -C "$src" -xf -
chown -R lodgetest: "$src"
pkgs=$(go list ./... | grep -v '/tests$' | sed "s#^github.com/lodge-containers/lodge#.#")
[[ $only == torture ]] || runuser -u lodgetest -- env -i \
	HOME=/home/lodgetest USER=lodgetest PATH="$PATH" CI="${CI:-}" LODGE_TEST_STRICT="${LODGE_TEST_STRICT:-}" \
	XDG_RUNTIME_DIR="/run/user/$(id -u lodgetest)" \
	GOMODCACHE="$GOMODCACHE" GOPROXY=off GOFLAGS="-mod=mod $GOFLAGS" GOTOOLCHAIN=local \
	GOCACHE=/home/lodgetest/.cache/go-build \
	bash -c "cd $src && go test -count=1 $(echo $pkgs)"

# buildx and docker compose v2, from the module proxy, built once.
export LODGE_CLIENTS_DIR=${LODGE_CLIENTS_DIR:-/var/cache/lodge-clients}
hack/clients.sh "$LODGE_CLIENTS_DIR"

LODGE_TEST_USER=lodgetest LODGE_TEST_OTHER_USER=lodgeother LODGE_TEST_NOSUB_USER=lodgenosub \
	go test "${e2e[@]}" ./tests/...
