package paths

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/lodge-containers/lodge/errdefs"
)

// DaemonLock is held by the running lodged for the lifetime of its process:
// a flock on lodged.lock in the runtime dir, and lodged.pid naming it.
// The kernel drops the flock when the process dies, so a kill -9 never
// leaves a lock that blocks the next start.
type DaemonLock struct {
	f    *os.File
	dir  string
	name string
}

// LockDaemon takes the per-user daemon lock in runDir. When another lodged
// holds it, the error wraps errdefs.ErrConflict and names that lodged's pid.
func LockDaemon(runDir string) (*DaemonLock, error) { return lockNamed(runDir, "lodged") }

// LockKeeper takes the lock of the process that holds lodged's namespaces
// (keeper.lock, keeper.pid).
func LockKeeper(runDir string) (*DaemonLock, error) { return lockNamed(runDir, "keeper") }

func lockNamed(runDir, name string) (*DaemonLock, error) {
	f, err := os.OpenFile(filepath.Join(runDir, name+".lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			pid := "unknown"
			if b, err := os.ReadFile(filepath.Join(runDir, name+".pid")); err == nil {
				pid = strings.TrimSpace(string(b))
			}
			if name != "lodged" {
				return nil, errdefs.Conflictf("lodge's %s is already running for this user (pid %s, runtime dir %s)", name, pid, runDir)
			}
			return nil, errdefs.Conflictf("lodged is already running for this user (pid %s, runtime dir %s); stop it with 'lodge daemon stop'", pid, runDir)
		}
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(runDir, name+".pid"), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600); err != nil {
		f.Close()
		return nil, err
	}
	return &DaemonLock{f: f, dir: runDir, name: name}, nil
}

// Release removes the pid file and drops the lock.
func (l *DaemonLock) Release() {
	_ = os.Remove(filepath.Join(l.dir, l.name+".pid")) // the lock, not the file, says who runs
	l.f.Close()
}

// ReadDaemonPID returns the pid of the lodged holding the lock in runDir,
// or an error wrapping errdefs.ErrNotFound when none runs.
func ReadDaemonPID(runDir string) (int, error) {
	f, err := os.OpenFile(filepath.Join(runDir, "lodged.lock"), os.O_RDONLY, 0)
	if err != nil {
		return 0, errdefs.NotFoundf("no lodged running")
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB); err == nil {
		_ = unix.Flock(int(f.Fd()), unix.LOCK_UN) // the deferred Close unlocks too
		return 0, errdefs.NotFoundf("no lodged running")
	}
	// The kernel says who holds the lock; the pid file only says who
	// wrote it, and a pid read from a file must never be signalled
	// unchecked (-1 would be every process of the user).
	if pid := lockHolder(f); pid > 1 {
		return pid, nil
	}
	b, err := os.ReadFile(filepath.Join(runDir, "lodged.pid"))
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return 0, fmt.Errorf("%s holds %q, not a pid lodge would signal", filepath.Join(runDir, "lodged.pid"), strings.TrimSpace(string(b)))
	}
	return pid, nil
}

// lockHolder finds, in /proc/locks, the pid holding a flock on f's file
// (0 when it cannot tell).
func lockHolder(f *os.File) int {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return 0
	}
	b, err := os.ReadFile("/proc/locks")
	if err != nil {
		return 0
	}
	want := fmt.Sprintf("%02x:%02x:%d", unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino)
	for _, line := range strings.Split(string(b), "\n") {
		fs := strings.Fields(line)
		// "1: FLOCK  ADVISORY  WRITE 1234 00:2e:5678 0 EOF"
		if len(fs) >= 6 && fs[1] == "FLOCK" && fs[5] == want {
			if pid, err := strconv.Atoi(fs[4]); err == nil {
				return pid
			}
		}
	}
	return 0
}
