#!/usr/bin/env bash
# The installed, on-demand path a user takes: make install (no root), then
# lodge commands that start lodged themselves, and the docker CLI reaching
# it through the docker context lodge made, with no DOCKER_HOST to export.
# The image is a tiny busybox made from the host's busybox-static, so no
# registry is needed. Run as root on a fresh machine, it installs what is
# missing and does all this as the user lodgetest, with lodge installed in
# a temporary PREFIX; run as a user, it installs into ~/.local and uses you.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
if [[ $(id -u) -eq 0 ]]; then
	hack/setup-root.sh # first: the build needs gcc and libseccomp-dev
	prefix=$(mktemp -d /tmp/lodge-quickstart.XXXXXX)
	chmod 0755 "$prefix"
	make install PREFIX="$prefix"
	uid=$(id -u lodgetest)
	home=$(getent passwd lodgetest | cut -d: -f6)
	run() { runuser -u lodgetest -- env -i HOME="$home" USER=lodgetest PATH="$prefix/bin:/usr/local/bin:/usr/bin:/bin" XDG_RUNTIME_DIR="/run/user/$uid" "$@"; }
	tmp=$prefix
else
	prefix=$HOME/.local
	make install
	run() { PATH="$prefix/bin:$PATH" "$@"; }
	tmp=$(mktemp -d)
fi

go run ./hack/mkimage busybox:latest >"$tmp/busybox.tar"
chmod 0644 "$tmp/busybox.tar"
# lodged is not started here: the first lodge command that needs it does.
run lodge load -i "$tmp/busybox.tar"
run lodge run --rm busybox sh -c 'echo "hello from a rootless container: $(id)"'
if command -v docker >/dev/null; then
	echo "docker ps, with no DOCKER_HOST (the docker context \"lodge\"):"
	run env -u DOCKER_HOST docker ps -a
fi
echo
echo "lodge is installed in $prefix (bin/lodge, bin/lodged, libexec/lodge)."
echo "Any lodge command starts lodged when it is not running; 'lodge daemon install'"
echo "has systemd start it on demand instead; 'lodge doctor' checks this machine."
