package userns

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lodge-containers/lodge/paths"
	"github.com/lodge-containers/lodge/proc"
)

// The keeper's take-over of a dead host side's work (see RunKeeper).

// UplinkNSPath is where the keeper keeps the uplink network namespace
// mounted for the daemon: outside rootlesskit's state directory, which its
// parent removes when it ends, so the namespace (and the bridges in it)
// outlives the host side.
func UplinkNSPath(runDir string) string { return paths.UplinkNS(runDir) }

func pinUplink(stateDir, path string) error {
	from := filepath.Join(stateDir, "netns")
	if _, err := os.Stat(from); err != nil {
		return nil // no detached namespace (network driver none)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDONLY, 0o600)
	if err != nil {
		return err
	}
	f.Close()
	if err := unix.Mount(from, path, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("keeping the uplink namespace at %s: %w", path, err)
	}
	return nil
}

// hostSidePIDs are the processes above the keeper that it watches: its
// parent (rootlesskit's child) and the host-side lodged. A keeper a daemon
// started has only the latter, dying or dead.
func hostSidePIDs(adopt bool) []int {
	var pids []int
	if p, err := strconv.Atoi(os.Getenv(EnvParentPID)); err == nil && p > 1 {
		pids = append(pids, p)
	}
	if !adopt {
		pids = append(pids, os.Getppid())
	}
	return pids
}

// waitAnyGone blocks until one of pids has ended.
func waitAnyGone(pids []int) {
	var fds []unix.PollFd
	for _, p := range pids {
		fd, err := unix.PidfdOpen(p, 0)
		if err != nil {
			return // already gone
		}
		defer unix.Close(fd)
		fds = append(fds, unix.PollFd{Fd: int32(fd), Events: unix.POLLIN})
	}
	if len(fds) == 0 {
		return
	}
	// A parent that died before its pidfd was opened: the keeper is
	// re-parented, and the pid may be someone else's by now.
	if len(pids) > 1 && os.Getppid() != pids[len(pids)-1] {
		return
	}
	for {
		n, err := unix.Poll(fds, -1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || n > 0 {
			return
		}
	}
}

// takeOver ends what is left of the host side, then runs cfg.TakeOver.
func (k *keeper) takeOver(cfg KeeperConfig, hostSide []int) *TakenOver {
	for _, p := range hostSide {
		// Only a process of this user (uid 0 here) is signalled: the pid
		// came from the environment.
		if st, err := os.Stat(fmt.Sprintf("/proc/%d", p)); err == nil {
			if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Uid) == os.Getuid() {
				if err := syscall.Kill(p, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
					fmt.Fprintln(os.Stderr, "lodged: keeper: ending the host side's pid", p, ":", err)
				}
			}
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, p := range hostSide {
		for proc.Alive(p) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
	}
	os.Unsetenv(EnvParentPID) // daemons started from now on have no host side
	// The host side held the keeper's lock; now this process is it.
	var lock *paths.DaemonLock
	for lock == nil && time.Now().Before(deadline) {
		l, err := paths.LockKeeper(cfg.RunDir)
		if err == nil {
			lock = l
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if cfg.TakeOver == nil {
		return nil
	}
	t, err := cfg.TakeOver()
	if err != nil {
		fmt.Fprintln(os.Stderr, "lodged: keeper: taking over the uplink and ports:", err)
		return nil
	}
	k.mu.Lock()
	for _, p := range t.Helpers {
		k.helpers[p] = true
	}
	k.mu.Unlock()
	return t
}
