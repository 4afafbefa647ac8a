package userns

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lodge-containers/lodge/internal/buildbin"
)

// TestLodgeWait: lodge-wait, what the foreground lodged becomes, passes
// SIGTERM on to the daemon after telling systemd STOPPING=1, and exits
// with the status the keeper then sends on its connection.
func TestLodgeWait(t *testing.T) {
	dir := t.TempDir()
	var log bytes.Buffer
	if err := buildbin.Build("..", dir, &log, WaitBinary); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	// The daemon: a shell that says which signal it got.
	gotTerm := filepath.Join(dir, "got-term")
	daemon := exec.Command("sh", "-c", "trap 'touch "+gotTerm+"; exit 0' TERM; while :; do sleep 0.05; done")
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	defer daemon.Process.Kill()
	// The keeper's end of the connection.
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	keeper, waiterEnd := os.NewFile(uintptr(fds[0]), "keeper"), os.NewFile(uintptr(fds[1]), "waiter")
	defer keeper.Close()
	// systemd's end of sd_notify.
	notifyPath := filepath.Join(dir, "notify")
	notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifyPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer notify.Close()

	w := exec.Command(filepath.Join(dir, WaitBinary), strconv.Itoa(daemon.Process.Pid), "3", notifyPath)
	w.ExtraFiles = []*os.File{waiterEnd}
	var stderr bytes.Buffer
	w.Stderr = &stderr
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	waiterEnd.Close()
	done := make(chan error, 1)
	go func() { done <- w.Wait() }()

	// Signal it once its handler for SIGTERM, and the daemon's, are in
	// place (lodged execs it with the signal blocked, which a test cannot).
	for _, p := range []*os.Process{w.Process, daemon.Process} {
		for deadline := time.Now().Add(10 * time.Second); !catches(p.Pid, syscall.SIGTERM); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("pid %d never caught SIGTERM\n%s", p.Pid, stderr.String())
			}
		}
	}
	if err := w.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	notify.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 64)
	if n, err := notify.Read(buf); err != nil || string(buf[:n]) != "STOPPING=1" {
		t.Errorf("sd_notify on SIGTERM: %q, %v; want STOPPING=1", buf[:max(n, 0)], err)
	}
	daemonDone := make(chan error, 1)
	go func() { daemonDone <- daemon.Wait() }()
	select {
	case err := <-daemonDone:
		if err != nil {
			t.Errorf("the daemon after the waiter's SIGTERM: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("the daemon did not end after the waiter's SIGTERM")
	}
	if _, err := os.Stat(gotTerm); err != nil {
		t.Errorf("the daemon did not get SIGTERM: %v", err)
	}
	select {
	case err := <-done:
		t.Fatalf("lodge-wait ended before the keeper said the daemon's status: %v\n%s", err, stderr.String())
	default:
	}
	// The keeper's reply comes in two pieces.
	keeper.Write([]byte(`{"exi`))
	time.Sleep(50 * time.Millisecond)
	keeper.Write([]byte(`t":143}` + "\n"))
	select {
	case err := <-done:
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 143 {
			t.Errorf("lodge-wait ended with %v, want exit 143\n%s", err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		w.Process.Kill()
		t.Fatalf("lodge-wait did not end after the keeper's reply\n%s", stderr.String())
	}
}

// catches tells whether pid has a handler for sig (SigCgt).
func catches(pid int, sig syscall.Signal) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "SigCgt:"); ok {
			mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && mask&(1<<(uint(sig)-1)) != 0
		}
	}
	return false
}
