package daemon

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"

	"github.com/lodge-containers/lodge/errdefs"
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
	pids := append([]int{pid}, descendants(pid)...)
	resp := container.TopResponse{Titles: []string{"UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"}}
	for _, p := range pids {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue
		}
		rest := string(stat[strings.LastIndexByte(string(stat), ')')+2:])
		f := strings.Fields(rest)
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p))
		cmd := strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " "))
		uid := "?"
		if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p)); err == nil {
			for _, l := range strings.Split(string(st), "\n") {
				if v, ok := strings.CutPrefix(l, "Uid:"); ok {
					uid = strings.Fields(v)[0]
				}
			}
		}
		ppid := "0"
		if len(f) > 1 {
			ppid = f[1]
		}
		resp.Processes = append(resp.Processes, []string{uid, strconv.Itoa(p), ppid, "0", "-", "?", "00:00:00", cmd})
	}
	return resp, nil
}

func descendants(root int) []int {
	children := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
		if len(f) > 1 {
			pp, _ := strconv.Atoi(f[1])
			children[pp] = append(children[pp], pid)
		}
	}
	var out []int
	queue := []int{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, ch := range children[p] {
			out = append(out, ch)
			queue = append(queue, ch)
		}
	}
	return out
}
