package runtime

import (
	"errors"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Share says where a container's PID, IPC or UTS namespace comes from: a
// new one (the zero value), the one the runtime itself runs in (Host:
// lodged's), or the one at Path (another container's /proc/PID/ns/...).
type Share struct {
	Host bool
	Path string
}

// Shares are the namespace choices beside the network's (--pid, --ipc,
// --uts) and what they change in /dev/shm. Another container's /dev/shm
// cannot be bound (it is mounted in that container's mount namespace
// only), so joining its IPC namespace shares System V IPC and message
// queues but not /dev/shm's files.
type Shares struct {
	PID, IPC, UTS Share
	// NoShm leaves /dev/shm out (--ipc none).
	NoShm bool
}

// hostMqueue is where lodged's POSIX message queues are mounted, if
// anywhere; a variable for the tests.
var hostMqueue = "/dev/mqueue"

// applyShares edits a spec for Shares. A namespace shared with lodged is
// left out of the spec, so the container stays in it; its kernel
// filesystems then belong to a namespace the user namespace does not own
// and cannot be mounted afresh, so lodged's are bound instead, as Podman
// does rootless.
func applyShares(s *specs.Spec, sh Shares, ownUserNS bool) error {
	if ownUserNS && (sh.PID != Share{} || sh.IPC != Share{} || sh.UTS != Share{}) {
		return errors.New("a container with a user namespace of its own cannot share its pid, ipc or uts namespace")
	}
	by := map[specs.LinuxNamespaceType]Share{specs.PIDNamespace: sh.PID, specs.IPCNamespace: sh.IPC, specs.UTSNamespace: sh.UTS}
	var nss []specs.LinuxNamespace
	for _, ns := range s.Linux.Namespaces {
		share, ok := by[ns.Type]
		switch {
		case ok && share.Host:
			continue
		case ok && share.Path != "":
			ns.Path = share.Path
		}
		nss = append(nss, ns)
	}
	s.Linux.Namespaces = nss
	if sh.UTS != (Share{}) {
		// The runtime refuses to set a hostname without a UTS namespace
		// of its own, and in a joined one it would rename the container
		// that made it: the name is that container's (HOSTNAME and
		// /etc/hostname still say it).
		s.Hostname, s.Domainname = "", ""
	}
	var ms []specs.Mount
	for _, m := range s.Mounts {
		switch {
		case m.Destination == "/proc" && sh.PID.Host:
			m = specs.Mount{Destination: "/proc", Type: "bind", Source: "/proc", Options: []string{"rbind", "nosuid", "noexec", "nodev"}}
		case m.Destination == "/dev/shm" && sh.NoShm:
			continue
		case m.Destination == "/dev/shm" && sh.IPC.Host:
			m = specs.Mount{Destination: "/dev/shm", Type: "bind", Source: "/dev/shm", Options: []string{"rbind", "nosuid", "noexec", "nodev"}}
		case m.Destination == "/dev/mqueue" && sh.IPC.Host:
			if fi, err := os.Stat(hostMqueue); err != nil || !fi.IsDir() {
				continue // lodged has none to share
			}
			m = specs.Mount{Destination: "/dev/mqueue", Type: "bind", Source: hostMqueue, Options: []string{"rbind", "nosuid", "noexec", "nodev"}}
		}
		ms = append(ms, m)
	}
	s.Mounts = ms
	return nil
}
