package tests

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPty opens a pseudo-terminal pair with the given size.
func openPty(t *testing.T, rows, cols uint16) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	unix.IoctlSetWinsize(int(m.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols})
	t.Cleanup(func() { m.Close(); s.Close() })
	return m, s
}

// ptyRun runs a command as the session's user on a new pty and returns
// the master side and a function that waits for the exit code.
func (s *session) ptyRun(rows, cols uint16, name string, args ...string) (*os.File, *syncBuffer, func() int) {
	s.t.Helper()
	master, slave := openPty(s.t, rows, cols)
	cmd := s.command(s.t.Context(), name, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setsid = true
	cmd.SysProcAttr.Setctty = true
	cmd.SysProcAttr.Ctty = 0
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	slave.Close()
	out := &syncBuffer{}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			out.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	return master, out, func() int {
		cmd.Wait()
		return cmd.ProcessState.ExitCode()
	}
}

// syncBuffer is a buffer one goroutine writes while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func waitOutput(t *testing.T, out *syncBuffer, want string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if strings.Contains(out.String(), want) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("output never showed %q; got %q", want, out.String())
}

// checkSizes waits for a shell's prompt on a pty, checks that stty sees
// the size it started with, resizes the pty and checks stty sees that.
func checkSizes(t *testing.T, master *os.File, out *syncBuffer, first string, rows, cols uint16) {
	t.Helper()
	waitOutput(t, out, "#", 15*time.Second)
	master.Write([]byte("stty size\n"))
	waitOutput(t, out, first, 10*time.Second)
	unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols})
	time.Sleep(500 * time.Millisecond)
	master.Write([]byte("stty size\n"))
	waitOutput(t, out, fmt.Sprintf("%d %d", rows, cols), 10*time.Second)
}

func TestInteractiveTTY(t *testing.T) {
	s, docker := containerSession(t)
	// lodge's own runtime, and runc's binary (whose exec makes the console
	// itself, behind a pty of lodged's).
	for _, rt := range []string{"lodge", "runc"} {
		t.Run(rt, func(t *testing.T) {
			name := "tty-" + rt
			// run -it: the pty is sized at creation (ConsoleSize), resizes
			// follow, and the command's exit code comes back.
			master, out, wait := s.ptyRun(31, 97, docker, "run", "--rm", "-it", "--runtime", rt, "--name", name, "busybox", "sh")
			checkSizes(t, master, out, "31 97", 40, 120)

			// exec -it into it, with its own size, resized too.
			emaster, eout, ewait := s.ptyRun(25, 81, docker, "exec", "-it", name, "sh")
			checkSizes(t, emaster, eout, "25 81", 33, 99)
			emaster.Write([]byte("exit 5\n"))
			if code := ewait(); code != 5 {
				t.Errorf("exec -it exit code %d, want 5", code)
			}
			emaster.Close()

			master.Write([]byte("echo bye; exit 3\n"))
			waitOutput(t, out, "bye", 10*time.Second)
			if code := wait(); code != 3 {
				t.Errorf("run -it exit code %d, want 3 (output %q)", code, out.String())
			}
		})
	}
}
func TestExec(t *testing.T) {
	s, docker := containerSession(t)
	s.must(docker, "run", "-d", "--name", "box", "-u", "1000:1000", "-w", "/tmp", "busybox", "sleep", "1000")
	r := s.must(docker, "exec", "-u", "0", "-e", "X=1", "-w", "/", "box", "sh", "-c", "id -u; echo X=$X; pwd")
	if r.stdout != "0\nX=1\n/\n" {
		t.Errorf("exec -u 0 -e -w: %q", r.stdout)
	}
	r = s.must(docker, "exec", "box", "sh", "-c", "id -u; pwd")
	if r.stdout != "1000\n/tmp\n" {
		t.Errorf("exec inherits the container's user and workdir: %q", r.stdout)
	}
	r = s.run(docker, "exec", "box", "sh", "-c", "echo oops >&2; exit 4")
	if r.code != 4 || !strings.Contains(r.stderr, "oops") {
		t.Errorf("exec exit code and stderr: %s", r)
	}
	cmd := s.command(t.Context(), docker, "exec", "-i", "box", "cat")
	cmd.Stdin = strings.NewReader("piped\n")
	if out, err := cmd.Output(); err != nil || string(out) != "piped\n" {
		t.Errorf("exec -i: %v %q", err, out)
	}
	r = s.run(docker, "exec", "box", "no-such-command")
	if r.code != 127 && r.code != 126 {
		t.Errorf("exec of a missing command: %s", r)
	}
	s.must(docker, "stop", "-t", "0", "box")
	r = s.run(docker, "exec", "box", "true")
	if r.code == 0 || !strings.Contains(r.stderr, "not running") {
		t.Errorf("exec in a stopped container: %s", r)
	}
}
