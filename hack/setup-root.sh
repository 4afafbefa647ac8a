#!/usr/bin/env bash
# Prepares this machine for lodge's tests and demo, as TESTING.md describes.
# Run as root; idempotent. It installs what is missing from Debian, creates
# the unprivileged users the tests run as, and makes their runtime dirs.
#   lodgetest   subuid/subgid ranges (useradd gives them on Debian)
#   lodgeother  a second user, who must be refused by lodgetest's daemon
#   lodgenosub  no subordinate ids, for the single-id fallback
set -euo pipefail

if [[ $(id -u) -ne 0 ]]; then
	echo "hack/setup-root.sh must run as root" >&2
	exit 1
fi

# systemd: systemd-socket-activate and systemd-analyze, for the tests of
# lodged.socket and lodged.service (they need no running systemd).
pkgs=(uidmap busybox-static slirp4netns passt fuse-overlayfs iproute2 procps gcc libc6-dev libseccomp-dev pkg-config runc python3-docker docker-compose dbus-daemon bindfs fuse3 systemd)
missing=()
for p in "${pkgs[@]}"; do
	dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
	echo "setup: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

ensure_user() {
	local name=$1
	id "$name" >/dev/null 2>&1 || useradd -m -s /bin/bash "$name"
	local uid
	uid=$(id -u "$name")
	install -d -m 0700 -o "$name" -g "$name" "/run/user/$uid"
}
ensure_user lodgetest
ensure_user lodgeother
ensure_user lodgenosub

# lodgetest needs ranges, lodgenosub must have none.
grep -q '^lodgetest:' /etc/subuid || usermod --add-subuids 200000-265535 lodgetest
grep -q '^lodgetest:' /etc/subgid || usermod --add-subgids 200000-265535 lodgetest
if grep -q '^lodgenosub:' /etc/subuid /etc/subgid; then
	sed -i '/^lodgenosub:/d' /etc/subuid /etc/subgid
fi

# Desktop distributions ship these world-usable; rootless networking and
# fuse-overlayfs need them.
chmod 0666 /dev/net/tun /dev/fuse 2>/dev/null || true

# A cgroup v2 subtree for lodgetest, delegated as systemd delegates
# user@.service: the directory and the files that move processes and hand
# controllers down (cgroup.procs, cgroup.subtree_control, cgroup.threads)
# belong to the user. Whatever controllers the hierarchy has are passed
# down to it (none on a v1/v2 hybrid machine's v2 hierarchy: pause, kill
# and placement work there, limits do not). The host's v1 mounts are left
# alone. The e2e tests start each lodged in a cgroup of its own below it.
v2=""
if [[ $(stat -fc %T /sys/fs/cgroup 2>/dev/null) == cgroup2fs ]]; then
	v2=/sys/fs/cgroup
elif [[ $(stat -fc %T /sys/fs/cgroup/unified 2>/dev/null) == cgroup2fs ]]; then
	v2=/sys/fs/cgroup/unified
fi
if [[ -n $v2 ]]; then
	slice=$v2/lodge-test.slice
	mkdir -p "$slice"
	for c in $(cat "$slice/cgroup.controllers"); do
		echo "+$c" >"$slice/cgroup.subtree_control" 2>/dev/null || true
	done
	deleg=$slice/lodgetest
	mkdir -p "$deleg"
	chown lodgetest: "$deleg" "$deleg/cgroup.procs" "$deleg/cgroup.subtree_control" "$deleg/cgroup.threads"
else
	echo "setup: no cgroup v2 hierarchy: the cgroup tests cannot run here" >&2
fi
