#!/usr/bin/env bash
# Builds lodge, starts lodged as an unprivileged user and shows what it
# found. Run as root on a fresh machine, it installs what is missing and
# uses the user lodgetest; run as a user, it uses you.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
make build

if [[ $(id -u) -eq 0 ]]; then
	hack/setup-root.sh
	dir=$(mktemp -d /tmp/lodge-quickstart.XXXXXX)
	chmod 0755 "$dir"
	cp bin/lodged bin/lodge "$dir/"
	uid=$(id -u lodgetest)
	run() { runuser -u lodgetest -- env -i HOME=/home/lodgetest USER=lodgetest PATH="$dir:/usr/local/bin:/usr/bin:/bin" XDG_RUNTIME_DIR="/run/user/$uid" "$@"; }
else
	dir=$PWD/bin
	run() { PATH="$dir:$PATH" "$@"; }
fi

run lodge daemon status >/dev/null 2>&1 || run lodge daemon start
run lodge version
run lodge info
echo
echo "lodged is running. Point the docker CLI at it with:"
echo "  export DOCKER_HOST=unix://\${XDG_RUNTIME_DIR}/lodge/lodge.sock"
echo "Stop it with: lodge daemon stop"
