// Command lodge-shim is what each running container's monitor becomes
// once the container is created: lodge-monitor (libcontainer inside)
// creates it, then replaces itself with this binary, which holds the
// container's stdio or tty, writes its log, serves attach and control,
// and records its exit (shim.Run). It links the shim package alone, so
// that the process that lives as long as the container is small.
// lodge-monitor starts it; users do not.
package main

import (
	"fmt"
	"os"

	"github.com/lodge-containers/lodge/shim"
)

func main() {
	if err := shim.Main(); err != nil {
		fmt.Fprintln(os.Stderr, "lodge-shim:", err)
		os.Exit(1)
	}
}
