package stats

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"

	"github.com/lodge-containers/lodge/errdefs"
	"github.com/lodge-containers/lodge/proc"
)

// Top lists a running container's processes (its init and every
// descendant) as Docker does: the host's ps, run with psArgs (-ef when
// empty) and the container's pids, its lines for those pids kept. The
// daemon shares the host's pid namespace. Where there is no ps, the
// default listing is read from /proc.
func (s *Sampler) Top(ctx context.Context, ref, psArgs string) (container.TopResponse, error) {
	t, err := s.containers.Proc(ref)
	if err != nil {
		return container.TopResponse{}, err
	}
	pid, running := t.Pid, t.Running
	if !running || pid == 0 {
		return container.TopResponse{}, errdefs.Conflictf("container %s is not running", t.ID)
	}
	if psArgs == "" {
		psArgs = "-ef"
	}
	if err := validatePSArgs(psArgs); err != nil {
		return container.TopResponse{}, err
	}
	pids := append([]int{pid}, proc.Descendants(pid)...)
	out, err := runPS(ctx, psArgs, pids)
	if errors.Is(err, exec.ErrNotFound) && psArgs == "-ef" {
		return topFromProc(pids), nil
	}
	if err != nil {
		return container.TopResponse{}, err
	}
	return parsePSOutput(out, pids)
}

// runPS runs ps with args and the pids (-q), and without them when ps
// refuses the two together (some options cannot go with -q), as Docker
// does. A refusal's first line of stderr is the error.
func runPS(ctx context.Context, args string, pids []int) ([]byte, error) {
	list := make([]string, len(pids))
	for i, p := range pids {
		list[i] = strconv.Itoa(p)
	}
	argv := strings.Split(args, " ")
	out, err := exec.CommandContext(ctx, "ps", append(argv, "-q", strings.Join(list, ","))...).Output()
	if err == nil {
		return out, nil
	}
	if errors.Is(err, exec.ErrNotFound) {
		return nil, err
	}
	out, err = exec.CommandContext(ctx, "ps", argv...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			if line, _, _ := bytes.Cut(ee.Stderr, []byte("\n")); len(line) > 0 {
				return nil, errdefs.InvalidArgumentf("%s", line)
			}
		}
		return nil, fmt.Errorf("ps: %w", err)
	}
	return out, nil
}

// psPIDArg is a ps option that chooses processes by a column named PID
// something: only pid= may, as in Docker.
var psPIDArg = regexp.MustCompile(`\s+([^\s]*)=\s*(PID[^\s]*)`)

func validatePSArgs(args string) error {
	for _, g := range psPIDArg.FindAllStringSubmatch(args, -1) {
		if g[1] != "pid" {
			return errdefs.InvalidArgumentf("specifying \"%s=%s\" is not allowed", g[1], g[2])
		}
	}
	return nil
}

// parsePSOutput keeps ps's lines for pids, and the thread lines (PID
// "-", with ps's m option) that follow a kept one. The last column takes
// the rest of the line (the command and its arguments).
func parsePSOutput(out []byte, pids []int) (container.TopResponse, error) {
	lines := strings.Split(string(out), "\n")
	resp := container.TopResponse{Titles: strings.Fields(lines[0]), Processes: [][]string{}}
	pidCol := slices.Index(resp.Titles, "PID")
	if pidCol < 0 {
		return container.TopResponse{}, errdefs.InvalidArgumentf("couldn't find PID field in ps output")
	}
	keep := func(fields []string) {
		n := len(resp.Titles)
		if len(fields) < n {
			fields = append(fields, make([]string, n-len(fields))...)
		}
		row := append(slices.Clone(fields[:n-1]), strings.Join(fields[n-1:], " "))
		resp.Processes = append(resp.Processes, row)
	}
	kept := false
	for _, line := range lines[1:] {
		fields := strings.Fields(line)
		if len(fields) <= pidCol {
			continue
		}
		if fields[pidCol] == "-" {
			if kept {
				keep(fields)
			}
			continue
		}
		p, err := strconv.Atoi(fields[pidCol])
		if err != nil {
			return container.TopResponse{}, fmt.Errorf("unexpected pid %q in ps output", fields[pidCol])
		}
		if kept = slices.Contains(pids, p); kept {
			keep(fields)
		}
	}
	return resp, nil
}

// topFromProc is the -ef listing read from /proc, for a machine without
// ps: the columns it cannot know cheaply are left at zero.
func topFromProc(pids []int) container.TopResponse {
	resp := container.TopResponse{Titles: []string{"UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"}, Processes: [][]string{}}
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
	return resp
}
