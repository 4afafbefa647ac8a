package shim

import (
	"context"
	"errors"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

func TestParseStartTime(t *testing.T) {
	for _, tc := range []struct {
		name, stat string
		want       uint64
		err        bool
		gone       bool
	}{
		{"plain", "42 (sleep) S 1 42 42 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 123456 1000 100", 123456, false, false},
		{"odd name", "42 (a) b) S (c) S 1 42 42 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 777 1000 100", 777, false, false},
		{"zombie", "42 (sleep) Z 1 42 42 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 123456 0 0", 0, true, true},
		{"short", "42 (sleep) S 1 42", 0, true, false},
		{"garbage", "no parenthesis here", 0, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStartTime([]byte(tc.stat))
			if (err != nil) != tc.err || got != tc.want {
				t.Fatalf("parseStartTime = %d, %v; want %d, error %v", got, err, tc.want, tc.err)
			}
			if tc.gone && !errors.Is(err, ErrInitGone) {
				t.Fatalf("a zombie: %v, want ErrInitGone", err)
			}
		})
	}
}

// TestInitProc: a process that is not the caller's child is seen alive,
// signalled and waited for through its pid and start time, and a wrong
// start time (a recycled pid) is never taken for it.
func TestInitProc(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Skip("no sleep:", err)
	}
	defer cmd.Process.Kill()
	reaped := make(chan struct{})
	go func() { cmd.Wait(); close(reaped) }()
	st, err := StartTime(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	p := InitProc{Pid: cmd.Process.Pid, StartTime: st}
	if !p.Alive() {
		t.Fatal("a running process is not alive")
	}
	other := InitProc{Pid: p.Pid, StartTime: st + 1}
	if other.Alive() || !errors.Is(other.Signal(syscall.SIGKILL), ErrInitGone) {
		t.Fatal("a process with another start time was taken for the init")
	}
	if (InitProc{Pid: p.Pid}).Alive() {
		t.Fatal("an unknown start time was taken for the init")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	if err := p.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait on a running process: %v", err)
	}
	cancel()
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Wait(ctx); err != nil {
		t.Fatalf("Wait for a killed process: %v", err)
	}
	<-reaped
	if p.Alive() || !errors.Is(p.Signal(syscall.SIGKILL), ErrInitGone) {
		t.Fatal("an ended process is alive")
	}
}
