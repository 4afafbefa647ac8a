package shim

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/lodge-containers/lodge/cgroupv2"
)

// EndCgroup notes an OOM kill in the container's cgroup dir ("" without
// one) and kills what is left there (a daemonised child that outlived its
// init), then removes the cgroup.
func EndCgroup(dir string, st *ExitStatus) {
	if dir == "" {
		return
	}
	if cgroupv2.OOMKills(dir) > 0 {
		st.OOMKilled = true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cgroupv2.Freeze(ctx, dir, false)
	cgroupv2.Kill(ctx, dir)
	if err := cgroupv2.Remove(ctx, dir); err != nil {
		fmt.Fprintln(os.Stderr, "lodge-monitor:", err)
	}
}
