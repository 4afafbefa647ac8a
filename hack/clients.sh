#!/usr/bin/env bash
# Builds the Go-module clients the end-to-end tests drive — the buildx CLI
# plugin, docker compose v2, crictl (the CRI's client), critest (the CRI
# validation suite, a Go test binary) and the kubelet — once into a cache directory, from the
# Go module proxy (none is packaged in Debian 12). Prints nothing when they
# are there already. Usage: hack/clients.sh [DIR] (default
# /var/cache/lodge-clients as root, ~/.cache/lodge-clients otherwise).
# The tests find them through LODGE_CLIENTS_DIR.
set -euo pipefail
export PATH=/usr/local/go/bin:$PATH
BUILDX_VERSION=v0.38.2
COMPOSE_VERSION=v2.40.3
CRICTL_VERSION=v1.37.0
KUBELET_VERSION=v1.37.2
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
# The kubelet is a package of k8s.io/kubernetes, whose go.mod replaces
# every k8s.io staging module by a directory of its repository that the
# module's zip leaves out, so neither `go install pkg@version` nor a build
# in its source works. A throwaway module requires it and points each of
# those replaces at the staging module's own release (v0.N.M for v1.N.M).
build_kubelet() {
	local stamp=$bin/kubelet.version src tmp
	if [[ -x $bin/kubelet && $(cat "$stamp" 2>/dev/null) == "$KUBELET_VERSION stamped" ]]; then
		return
	fi
	echo "clients: building kubelet $KUBELET_VERSION (about 20 minutes, once)" >&2
	src=$(go mod download -json "k8s.io/kubernetes@$KUBELET_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	[[ -d $src ]] || { echo "clients: no source for k8s.io/kubernetes@$KUBELET_VERSION" >&2; exit 1; }
	tmp=$(mktemp -d)
	{
		printf 'module lodge.local/kubelet\n\ngo 1.26.0\n\nrequire k8s.io/kubernetes %s\n\nreplace (\n' "$KUBELET_VERSION"
		sed -n "s#^[[:space:]]*\(k8s.io/[^ ]*\) => ./staging/.*#\t\1 => \1 v0.${KUBELET_VERSION#v1.}#p" "$src/go.mod"
		printf ')\n'
	} >"$tmp/go.mod"
	printf '//go:build tools\n\npackage tools\n\nimport _ "k8s.io/kubernetes/cmd/kubelet"\n' >"$tmp/tools.go"
	local v=k8s.io/component-base/version minor=${KUBELET_VERSION#v1.}
	(cd "$tmp" && GOWORK=off go mod tidy && GOWORK=off go build -trimpath \
		-ldflags "-X $v.gitVersion=$KUBELET_VERSION -X $v.gitMajor=1 -X $v.gitMinor=${minor%%.*}" \
		-o "$bin/.new-kubelet" k8s.io/kubernetes/cmd/kubelet)
	rm -rf "$tmp"
	mv "$bin/.new-kubelet" "$bin/kubelet"
	echo "$KUBELET_VERSION stamped" >"$stamp"
}
build_kubelet
chmod -R a+rX "$dir"
