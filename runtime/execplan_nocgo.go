//go:build !cgo

package runtime

import (
	"errors"

	"github.com/opencontainers/runc/libcontainer/configs"
	"golang.org/x/sys/unix"
)

// seccompProgram needs cgo (execplan_seccomp.go): without it, containers
// with a seccomp profile exec through lodge-monitor.
func seccompProgram(*configs.Seccomp) ([]unix.SockFilter, uint, error) {
	return nil, 0, errors.New("lodged is built without cgo: it cannot catch libcontainer's seccomp program")
}
