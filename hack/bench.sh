#!/usr/bin/env bash
# make bench: lodge beside Docker rootless and Podman rootless, one run.
# As root it sets the machine up, installs the anchors from Debian when they
# are missing, and runs every engine as the unprivileged test user.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
export GOFLAGS="-tags=exclude_graphdriver_btrfs,exclude_graphdriver_devicemapper,containers_image_openpgp,seccomp"
if [[ $(id -u) -eq 0 ]]; then
	hack/setup-root.sh
	missing=()
	for p in podman docker.io rootlesskit runc containerd containernetworking-plugins; do
		dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
	done
	# runc (the anchors' runtime) gives every container a session keyring,
	# and a user may hold only 200 keys by default: the scale group's 200
	# running containers would fail with "disk quota exceeded". lodge's
	# containers join none. Raise the per-user quota as Docker's docs
	# advise for many containers.
	for k in maxkeys:2000 maxbytes:2000000; do
		f=/proc/sys/kernel/keys/${k%%:*}
		(($(cat "$f") >= ${k#*:})) || echo "${k#*:}" >"$f"
	done
	if ((${#missing[@]})); then
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null || echo "bench: could not install ${missing[*]}; those anchors will say so" >&2
	fi
fi
# What the figures were made with, for bench/results.json and the README.
export BENCH_CMD="${BENCH:+BENCH=$BENCH }bash hack/bench.sh${*:+ $*}"
exec go run ./hack/bench ${BENCH:+-group "$BENCH"} "$@"
