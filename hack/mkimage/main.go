// Command mkimage writes a docker-archive of a one-layer image made from
// the host's static busybox, for `lodge load` on machines with no registry:
//
//	go run ./hack/mkimage busybox:latest > busybox.tar
package main

import (
	"fmt"
	"os"

	"github.com/lodge-containers/lodge/hack/fixture"
)

func main() {
	ref := "busybox:latest"
	if len(os.Args) > 1 {
		ref = os.Args[1]
	}
	b, err := fixture.Archive(ref, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkimage: needs busybox-static on PATH:", err)
		os.Exit(1)
	}
	if _, err := os.Stdout.Write(b); err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}
