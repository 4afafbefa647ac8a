package proc

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestWaitPidfd: the wait ends when the process does, and when the
// context does while the process runs on.
func TestWaitPidfd(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	fd, err := unix.PidfdOpen(cmd.Process.Pid, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	if ended, err := WaitPidfd(ctx, fd); ended || err != nil {
		t.Fatalf("wait on a running process: ended %v, %v", ended, err)
	}
	if d := time.Since(t0); d < 250*time.Millisecond || d > 10*time.Second {
		t.Errorf("the wait ended %v after its start, its context after 300ms", d)
	}

	go func() {
		time.Sleep(100 * time.Millisecond)
		_ = cmd.Process.Kill()
	}()
	if ended, err := WaitPidfd(context.Background(), fd); !ended || err != nil {
		t.Fatalf("wait on a process killed: ended %v, %v", ended, err)
	}
	// Once ended, at once.
	if ended, err := WaitPidfd(context.Background(), fd); !ended || err != nil {
		t.Fatalf("wait on an ended process: ended %v, %v", ended, err)
	}
}
