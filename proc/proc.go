// Package proc reads the host's process table from /proc: parents,
// states, status fields and command lines. The daemon's top, the tests and
// the benchmarks all walk process trees with it.
package proc

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Stat is the part of /proc/PID/stat lodge reads.
type Stat struct {
	PID, PPID int
	State     byte // R, S, D, Z, T, ...
}

// ReadStat reads one process's stat line.
func ReadStat(pid int) (Stat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return Stat{}, err
	}
	return parseStat(pid, b)
}

// parseStat reads the fields after the command name, which may itself
// hold spaces and parentheses: it ends at the last ')'.
func parseStat(pid int, b []byte) (Stat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return Stat{}, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 || len(f[0]) != 1 {
		return Stat{}, fmt.Errorf("/proc/%d/stat: too short", pid)
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return Stat{}, fmt.Errorf("/proc/%d/stat: parent: %w", pid, err)
	}
	return Stat{PID: pid, PPID: ppid, State: f[0][0]}, nil
}

// Alive reports whether pid exists and is not a zombie (a zombie has
// ended; only its parent's wait is missing).
func Alive(pid int) bool {
	st, err := ReadStat(pid)
	return err == nil && st.State != 'Z'
}

// Children maps each parent pid to its children, from one pass over /proc.
func Children() map[int][]int {
	children := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := ReadStat(pid); err == nil {
			children[st.PPID] = append(children[st.PPID], pid)
		}
	}
	return children
}

// Descendants lists every descendant of roots (not the roots), parents
// before their children.
func Descendants(roots ...int) []int {
	children := Children()
	seen := map[int]bool{}
	for _, r := range roots {
		seen[r] = true
	}
	var out []int
	queue := append([]int(nil), roots...)
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			if !seen[c] {
				seen[c] = true
				out = append(out, c)
				queue = append(queue, c)
			}
		}
	}
	return out
}

// StatusField is the first word of a /proc/PID/status line ("VmRSS",
// "Uid", ...), or "" when the process or the field is missing.
func StatusField(pid int, key string) string {
	return field(fmt.Sprintf("/proc/%d/status", pid), key)
}

// RollupField is the kB figure of a /proc/PID/smaps_rollup line ("Pss",
// "Rss", "Anonymous", ...), or "" when unreadable.
func RollupField(pid int, key string) string {
	return field(fmt.Sprintf("/proc/%d/smaps_rollup", pid), key)
}

// field is the first word after "key:" in a file of such lines.
func field(path, key string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, key+":"); ok {
			if f := strings.Fields(v); len(f) > 0 {
				return f[0]
			}
		}
	}
	return ""
}

// Cmdline is a process's command line, its arguments joined by spaces.
func Cmdline(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
}
