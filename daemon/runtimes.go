package daemon

import (
	"sort"
	"strings"

	"github.com/lodge-containers/lodge/errdefs"
)

// EmbeddedRuntime names lodge's own runtime: runc's libcontainer inside
// lodge-monitor, nothing to install. Other runtimes are OCI runtime
// binaries (runc, crun, or daemon.json's "runtimes"), chosen with
// --runtime.
const EmbeddedRuntime = "lodge"

// runtimeName checks a requested runtime and gives the name to record:
// the default for "".
func (m *specMaker) runtimeName(name string) (string, error) {
	if name == "" {
		name = m.defaultRuntime
	}
	if name == "" || name == EmbeddedRuntime {
		return EmbeddedRuntime, nil
	}
	if _, ok := m.runtimes[name]; !ok {
		known := []string{EmbeddedRuntime}
		for n := range m.runtimes {
			known = append(known, n)
		}
		sort.Strings(known[1:])
		return "", errdefs.InvalidArgumentf("unknown or invalid runtime name: %s (lodged knows %s)", name, strings.Join(known, ", "))
	}
	return name, nil
}

// runtimeBinary is the OCI runtime binary a container runs on, "" for the
// embedded runtime.
func (m *specMaker) runtimeBinary(c *Container) string {
	return m.runtimes[c.HostConfig.Runtime]
}
