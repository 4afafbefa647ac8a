package shim

import (
	"context"
	"fmt"
	"os"
	"time"

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
	cgroupfs.Freeze(ctx, dir, false)
	cgroupfs.Kill(ctx, dir)
	if err := cgroupfs.Remove(ctx, dir); err != nil {
		fmt.Fprintln(os.Stderr, "lodge-monitor:", err)
	}
}
