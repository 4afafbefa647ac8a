package runtime

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// A signal sent to tear a process down may find it gone: that, and only
// that, is not an error.
func TestKillGone(t *testing.T) {
	for _, c := range []struct {
		in   error
		fail bool
	}{
		{nil, false},
		{unix.ESRCH, false},
		{fmt.Errorf("signal: %w", unix.ESRCH), false},
		{os.ErrProcessDone, false},
		{unix.EPERM, true},
		{errors.New("container not running"), true},
	} {
		err := killGone(c.in)
		if (err != nil) != c.fail {
			t.Errorf("killGone(%v) = %v, want an error: %v", c.in, err, c.fail)
		}
		if c.fail && !errors.Is(err, c.in) {
			t.Errorf("killGone(%v) = %v, which hides the cause", c.in, err)
		}
	}
	// A reaped child, as os/exec reports it.
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	if err := killGone(cmd.Process.Signal(unix.SIGKILL)); err != nil {
		t.Errorf("killing a process already gone: %v", err)
	}
}

func TestRemoveIfAny(t *testing.T) {
	dir := t.TempDir()
	if err := removeIfAny(filepath.Join(dir, "none")); err != nil {
		t.Errorf("a missing file: %v", err)
	}
	f := filepath.Join(dir, "pid")
	if err := os.WriteFile(f, []byte("1"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := removeIfAny(f); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("still there: %v", err)
	}
	// What cannot be removed says so: it would be read as the new one's.
	full := filepath.Join(dir, "full")
	if err := os.MkdirAll(filepath.Join(full, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := removeIfAny(full); err == nil {
		t.Error("removing a non-empty directory succeeded")
	}
}

// forget says what it could not remove; nothing kept is not a failure.
func TestForgetReports(t *testing.T) {
	root := t.TempDir()
	if err := forget(root, "never-created", ""); err != nil {
		t.Errorf("libcontainer, nothing kept: %v", err)
	}
	// An OCI runtime whose delete fails (false ignores its arguments).
	bin, err := exec.LookPath("false")
	if err != nil {
		t.Fatal(err)
	}
	if err := forget(root, "c1", bin); err == nil {
		t.Error("a runtime whose delete failed: no error")
	}
	bin, err = exec.LookPath("true")
	if err != nil {
		t.Fatal(err)
	}
	if err := forget(root, "c1", bin); err != nil {
		t.Errorf("a runtime whose delete worked: %v", err)
	}
}
