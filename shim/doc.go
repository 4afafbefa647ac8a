// Package shim is what stays beside a running container once it is
// created: the loop that pumps the container's output to its log and to
// attached clients, answers the control and attach sockets, waits for the
// container's init and records how it ended (Run).
//
// lodge-monitor creates the container with libcontainer, then replaces
// itself (execve, same pid: it stays the init's parent) with lodge-shim,
// handing it the container's files (Handoff). lodge-shim is C (shim/c:
// one epoll loop, static, a few hundred KiB beside each container where a
// Go binary costs 2 MiB and more) and speaks this package's protocol;
// Run is the same loop in Go, which lodge-monitor runs in-process for a
// container of an external OCI runtime (--runtime runc) or when no
// lodge-shim is installed beside it. This package imports no
// libcontainer, no go.podman.io, no net/http and no cgroupv2 (it ends a
// container's cgroup through internal/cgroupfs). It does not create
// containers, run execs or talk to the daemon's other state; the runtime
// package does.
package shim
