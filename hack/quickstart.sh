#!/usr/bin/env bash
# Builds lodge, starts lodged as an unprivileged user, loads a tiny busybox
# image made from the host's busybox-static (no registry needed) and runs a
# container. Run as root on a fresh machine, it installs what is missing
# and uses the user lodgetest; run as a user, it uses you.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
if [[ $(id -u) -eq 0 ]]; then
	hack/setup-root.sh # first: the build needs gcc and libseccomp-dev
fi
make build

if [[ $(id -u) -eq 0 ]]; then
	dir=$(mktemp -d /tmp/lodge-quickstart.XXXXXX)
	chmod 0755 "$dir"
	cp bin/lodged bin/lodge-monitor bin/lodge-usernet bin/lodge-init bin/lodge "$dir/"
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
go run ./hack/mkimage busybox:latest >"$dir/busybox.tar"
chmod 0644 "$dir/busybox.tar"
run lodge load -i "$dir/busybox.tar"
run lodge run --rm busybox sh -c 'echo "hello from a rootless container: $(id)"'
echo
echo "lodged is running. Point the docker CLI at it with:"
echo "  export DOCKER_HOST=unix://\${XDG_RUNTIME_DIR}/lodge/lodge.sock"
echo "Stop it with: lodge daemon stop"
