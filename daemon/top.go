package daemon

import (
	"context"
	"strconv"

	"github.com/moby/moby/api/types/container"

	"github.com/lodge-containers/lodge/errdefs"
	"github.com/lodge-containers/lodge/proc"
)

// Top lists a running container's processes: its init and every
// descendant, read from /proc (the daemon shares the host's pid namespace).
func (s *Containers) Top(ctx context.Context, ref string) (container.TopResponse, error) {
	c, err := s.Get(ref)
	if err != nil {
		return container.TopResponse{}, err
	}
	c.mu.Lock()
	pid, running := c.State.Pid, c.running()
	c.mu.Unlock()
	if !running || pid == 0 {
		return container.TopResponse{}, errdefs.Conflictf("container %s is not running", c.ID)
	}
	pids := append([]int{pid}, proc.Descendants(pid)...)
	resp := container.TopResponse{Titles: []string{"UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"}}
	for _, p := range pids {
		st, err := proc.ReadStat(p)
		if err != nil {
			continue // ended meanwhile
		}
		uid := proc.StatusField(p, "Uid")
		if uid == "" {
			uid = "?"
		}
		resp.Processes = append(resp.Processes, []string{uid, strconv.Itoa(p), strconv.Itoa(st.PPID), "0", "-", "?", "00:00:00", proc.Cmdline(p)})
	}
	return resp, nil
}
