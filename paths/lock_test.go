package paths

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/lodge-containers/lodge/errdefs"
)

func TestLockDaemon(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadDaemonPID(dir); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("no daemon: err = %v", err)
	}
	l, err := LockDaemon(dir)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := ReadDaemonPID(dir)
	if err != nil || pid != os.Getpid() {
		t.Fatalf("ReadDaemonPID = %d, %v", pid, err)
	}
	_, err = LockDaemon(dir)
	if !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), "pid "+strconv.Itoa(os.Getpid())) {
		t.Fatalf("second lock: err = %v, want a conflict naming our pid", err)
	}
	l.Release()
	l2, err := LockDaemon(dir)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	l2.Release()
}

// A pid file that lies (-1 would signal every process of the user) does
// not decide whom lodge daemon stop signals: the lock's holder does.
func TestReadDaemonPIDTrustsTheKernel(t *testing.T) {
	dir := t.TempDir()
	l, err := LockDaemon(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	if err := os.WriteFile(dir+"/lodged.pid", []byte("-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pid, err := ReadDaemonPID(dir)
	if err != nil || pid != os.Getpid() {
		t.Fatalf("ReadDaemonPID = %d, %v; want the lock holder %d", pid, err, os.Getpid())
	}
}
