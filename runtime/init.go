package runtime

import (
	"os"

	// Device rules: without this libcontainer cannot tell "unsupported"
	// from "not permitted", and only the latter is forgiven in rootless
	// mode (devices are bind mounts of the host's nodes there anyway).
	_ "github.com/opencontainers/cgroups/devices"

	"github.com/opencontainers/runc/libcontainer"
	// The C half of libcontainer's init: it runs before Go starts, in the
	// re-executed `lodged init`, to join or create namespaces.
	_ "github.com/opencontainers/runc/libcontainer/nsenter"
)

// IsInit reports whether this process is libcontainer's init helper
// (libcontainer re-executes lodged as `lodged init`).
func IsInit() bool {
	return len(os.Args) > 1 && os.Args[1] == "init" && os.Getenv("_LIBCONTAINER_INITPIPE") != ""
}

// Init runs libcontainer's init; it does not return.
func Init() { libcontainer.Init() }
