package shim

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/lodge-containers/lodge/errdefs"
	"github.com/lodge-containers/lodge/internal/cgroupfs"
)

// EndCgroup notes an OOM kill in the container's cgroup dir ("" without
// one) and kills what is left there (a daemonised child that outlived its
// init), then removes the cgroup.
func EndCgroup(dir string, st *ExitStatus) {
	if dir == "" {
		return
	}
	if cgroupfs.OOMKills(dir) > 0 {
		st.OOMKilled = true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Thawed first: a frozen cgroup's processes die only once they run.
	// No freezer, or a cgroup already gone (the daemon ended it), is fine.
	if err := cgroupfs.Freeze(ctx, dir, false); err != nil && !errors.Is(err, errdefs.ErrNotImplemented) && !errors.Is(err, os.ErrNotExist) {
		warn(err)
	}
	if err := cgroupfs.Kill(ctx, dir); err != nil {
		warn(err)
	}
	if err := cgroupfs.Remove(ctx, dir); err != nil {
		warn(err)
	}
}

// warn notes what went wrong while nobody waits for an answer: the
// monitor's stderr is the container's monitor.log, which the daemon shows
// when the monitor fails.
func warn(a ...any) {
	fmt.Fprintln(os.Stderr, append([]any{filepath.Base(os.Args[0]) + ":"}, a...)...)
}
