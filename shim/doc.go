// Package shim is what stays beside a running container once it is
// created: the loop that pumps the container's output to its log and to
// attached clients, answers the control and attach sockets, waits for the
// container's init and records how it ended (Run).
//
// lodge-monitor creates the container with libcontainer, then replaces
// itself (execve, same pid: it stays the init's parent) with lodge-shim,
// a binary built from this package alone, handing it the container's
// files (Handoff). This package therefore imports no libcontainer, no
// go.podman.io, no net/http and no cgroupv2 (D-Bus, systemd, crypto: it
// ends a container's cgroup through internal/cgroupfs): every running
// container pays for what it links (cmd/lodge-shim's TestSmallLinks). It does not create containers, run execs or talk to the
// daemon's other state; the runtime package does.
package shim
