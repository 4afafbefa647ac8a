#!/usr/bin/env bash
# Builds the Go-module clients the end-to-end tests drive — the buildx CLI
# plugin, docker compose v2, crictl (the CRI's client) and critest (the CRI
# validation suite, a Go test binary) — once into a cache directory, from the
# Go module proxy (none is packaged in Debian 12). Prints nothing when they
# are there already. Usage: hack/clients.sh [DIR] (default
# /var/cache/lodge-clients as root, ~/.cache/lodge-clients otherwise).
# The tests find them through LODGE_CLIENTS_DIR.
set -euo pipefail
export PATH=/usr/local/go/bin:$PATH
BUILDX_VERSION=v0.38.2
COMPOSE_VERSION=v2.40.3
CRICTL_VERSION=v1.37.0
if [[ $(id -u) -eq 0 ]]; then
	def=/var/cache/lodge-clients
else
	def=${XDG_CACHE_HOME:-$HOME/.cache}/lodge-clients
fi
dir=${1:-$def}
bin=$dir/bin
mkdir -p "$bin"
# Their own modules, not lodge's build tags.
export GOFLAGS=
# Each is built inside its own module, as its release build does: `go
# install pkg@version` refuses compose, whose go.mod has exclude
# directives. The version is stamped as their release builds do: compose
# refuses a buildx that reports v0.0.0 ("compose build requires buildx 0.17
# or later"). The stamp file says so, which rebuilds binaries made before.
build() { # name version module package version-variable
	local stamp=$bin/$1.version src
	if [[ -x $bin/$1 && $(cat "$stamp" 2>/dev/null) == "$2 stamped" ]]; then
		return
	fi
	echo "clients: building $1 $2 (a few minutes, once)" >&2
	src=$(go mod download -json "$3@$2" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	[[ -d $src ]] || { echo "clients: no source for $3@$2" >&2; exit 1; }
	if [[ $1 == critest ]]; then
		# A test binary: `go test -c`, as cri-tools' own Makefile builds it.
		(cd "$src" && GOWORK=off go test -c -trimpath -ldflags "-X $5=$2" -o "$bin/.new-$1" "./$4")
	else
		(cd "$src" && GOWORK=off go build -trimpath -ldflags "-X $5=$2" -o "$bin/.new-$1" "./$4")
	fi
	mv "$bin/.new-$1" "$bin/$1"
	echo "$2 stamped" >"$stamp"
}
build docker-buildx "$BUILDX_VERSION" github.com/docker/buildx cmd/buildx github.com/docker/buildx/version.Version
build docker-compose "$COMPOSE_VERSION" github.com/docker/compose/v2 cmd github.com/docker/compose/v2/internal.Version
build crictl "$CRICTL_VERSION" sigs.k8s.io/cri-tools cmd/crictl sigs.k8s.io/cri-tools/pkg/version.Version
build critest "$CRICTL_VERSION" sigs.k8s.io/cri-tools cmd/critest sigs.k8s.io/cri-tools/pkg/version.Version
chmod -R a+rX "$dir"
