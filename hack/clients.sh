#!/usr/bin/env bash
# Builds the Go-module clients the end-to-end tests drive — the buildx CLI
# plugin and docker compose v2 — once into a cache directory, from the Go
# module proxy (neither is packaged in Debian 12). Prints nothing when they
# are there already. Usage: hack/clients.sh [DIR] (default
# /var/cache/lodge-clients as root, ~/.cache/lodge-clients otherwise).
# The tests find them through LODGE_CLIENTS_DIR.
set -euo pipefail
export PATH=/usr/local/go/bin:$PATH
BUILDX_VERSION=v0.38.2
COMPOSE_VERSION=v2.40.3
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
build() { # name version package
	local stamp=$bin/$1.version
	if [[ -x $bin/$1 && $(cat "$stamp" 2>/dev/null) == "$2" ]]; then
		return
	fi
	echo "clients: building $1 $2 (a few minutes, once)" >&2
	# Built as the main module of its own source (go install pkg@v
	# refuses modules whose go.mod has exclude or replace directives, as
	# compose's does), from the module cache's copy.
	local mod=${3%%/cmd*} src
	src=$(go mod download -json "$mod@$2" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	(cd "$src" && go build -trimpath -o "$bin/$1.new" "./${3#"$mod"/}")
	mv "$bin/$1.new" "$bin/$1"
	echo "$2" >"$stamp"
}
build docker-buildx "$BUILDX_VERSION" github.com/docker/buildx/cmd/buildx
build docker-compose "$COMPOSE_VERSION" github.com/docker/compose/v2/cmd
chmod -R a+rX "$dir"
