// Command lodge-monitor is the small process that sits beside each running
// container: it creates the container through libcontainer, owns its
// stdio and logs, and records how it ended (runtime.RunMonitor). It is
// also libcontainer's init helper. lodged starts it; users do not.
//
// Once the container is created it becomes lodge-shim (execve, same pid),
// which holds the container for the rest of its life without libcontainer.
//
// It is a binary of its own, rather than lodged re-executed, because every
// exec of a binary pays for the init functions of everything linked into
// it: lodged carries the image store, the registry client and the network
// drivers (about 50 ms and 20 MiB before main), the monitor needs none of
// them, and a container start execs it twice.
package main

import (
	"fmt"
	"os"
	goruntime "runtime"

	"github.com/lodge-containers/lodge/runtime"
)

func init() {
	// The container's init is forked from this thread, and the monitor
	// later becomes lodge-shim (execve) from it too: an execve ends every
	// other thread, and a child whose forking thread ends gets its parent-
	// death signal, if it set one.
	goruntime.LockOSThread()
}

func main() {
	if runtime.IsInit() {
		runtime.Init()
	}
	if runtime.IsExec() {
		if err := runtime.ExecMain(); err != nil {
			os.Exit(1)
		}
		return
	}
	if err := runtime.MonitorMain(); err != nil {
		fmt.Fprintln(os.Stderr, "lodge-monitor:", err)
		os.Exit(1)
	}
}
