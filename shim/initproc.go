package shim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/lodge-containers/lodge/proc"
)

// InitProc is a container's init process as lodge knows it without its
// monitor: a pid, and the start time that tells that process from a later
// one given the same pid. The daemon falls back on it when the monitor
// died while the container runs on: the container is then still signalled,
// waited for and killed through its init (and its cgroup, where there is
// one), only its exit code is lost, with its parent.
type InitProc struct {
	Pid int
	// StartTime is /proc/PID/stat's starttime (clock ticks after boot);
	// 0 when unknown, and then the process is never taken for the init.
	StartTime uint64
}

// ErrInitGone means the container's init process has ended (or its pid
// now names another process).
var ErrInitGone = errors.New("the container's init process has ended")

// StartTime reads a process's start time, /proc/PID/stat's 22nd field.
func StartTime(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	return parseStartTime(b)
}

// parseStartTime reads the fields after the command name, which may hold
// spaces and parentheses: they start after the last ')'. A zombie counts
// as gone: it has ended, only its parent's wait is missing.
func parseStartTime(b []byte) (uint64, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("stat: no command name")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); starttime is field 22.
	if len(f) < 20 {
		return 0, errors.New("stat: too short")
	}
	if f[0] == "Z" || f[0] == "X" {
		return 0, ErrInitGone
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// open returns a pidfd for the init, checked to be the process StartTime
// names (checked after the open, so the pidfd cannot name a later one).
func (p InitProc) open() (int, error) {
	if p.Pid <= 0 || p.StartTime == 0 {
		return -1, ErrInitGone
	}
	fd, err := unix.PidfdOpen(p.Pid, 0)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return -1, ErrInitGone
		}
		return -1, fmt.Errorf("pidfd_open %d: %w", p.Pid, err)
	}
	if st, err := StartTime(p.Pid); err != nil || st != p.StartTime {
		unix.Close(fd)
		return -1, ErrInitGone
	}
	return fd, nil
}

// Alive reports whether the init still runs.
func (p InitProc) Alive() bool {
	fd, err := p.open()
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
}

// Signal sends sig to the init; ErrInitGone when it has ended.
func (p InitProc) Signal(sig syscall.Signal) error {
	fd, err := p.open()
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.PidfdSendSignal(fd, sig, nil, 0); err != nil {
		if errors.Is(err, unix.ESRCH) {
			return ErrInitGone
		}
		return err
	}
	return nil
}

// Wait blocks until the init has ended, or ctx is done. The init is not
// the caller's child: its exit status goes to whoever reaps it, and only
// its end is seen here (the pidfd turns readable).
func (p InitProc) Wait(ctx context.Context) error {
	fd, err := p.open()
	if errors.Is(err, ErrInitGone) {
		return nil
	}
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ended, err := proc.WaitPidfd(ctx, fd)
	if err != nil {
		return err
	}
	if !ended {
		return ctx.Err()
	}
	return nil
}
