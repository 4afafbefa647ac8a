package shim

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ChildRuntime is a container created by libcontainer whose init is the
// monitor's child (the monitor that created it became this process by
// execve, so it is still the init's parent), stopped on libcontainer's
// exec fifo until Start.
type ChildRuntime struct {
	Pid int
	// StateDir is libcontainer's directory of the container: it holds the
	// exec fifo, and Destroy removes it (libcontainer's Destroy of a
	// stopped container whose cgroups lodge manages itself).
	StateDir string
}

// execFifo is libcontainer's exec fifo: the init opens it for writing
// and runs the program once a reader has read its byte.
const execFifo = "exec.fifo"

// Start opens the exec fifo, which lets the init run its program. An init
// that died before opening it is an error, as libcontainer's Exec says.
func (c *ChildRuntime) Start() error {
	path := filepath.Join(c.StateDir, execFifo)
	type opened struct {
		f   *os.File
		err error
	}
	ch := make(chan opened, 1)
	go func() {
		// Blocks until the init opens its end.
		f, err := os.OpenFile(path, os.O_RDONLY, 0)
		ch <- opened{f, err}
	}()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case o := <-ch:
			if o.err != nil {
				return fmt.Errorf("exec fifo: %w", o.err)
			}
			return readFifo(o.f)
		case <-tick.C:
			if c.exited() {
				// It may have run and ended between two ticks. Then the
				// reader above has its byte (and its end, the writer
				// gone), or the fifo still holds the byte.
				select {
				case o := <-ch:
					if o.err != nil {
						return fmt.Errorf("exec fifo: %w", o.err)
					}
					return readFifo(o.f)
				case <-time.After(time.Second): // it never opened the fifo
				}
				f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NONBLOCK, 0)
				if err != nil || readFifo(f) != nil {
					return errors.New("container process is already dead")
				}
				return nil
			}
		}
	}
}

func readFifo(f *os.File) error {
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return err
	}
	if len(b) == 0 {
		return errors.New("cannot start an already running container")
	}
	if err := os.Remove(f.Name()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// exited reports whether the init has ended, without reaping it.
func (c *ChildRuntime) exited() bool {
	var info unix.Siginfo
	err := unix.Waitid(unix.P_PID, c.Pid, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
	return err != nil || info.Signo != 0
}

// Wait reaps the init.
func (c *ChildRuntime) Wait() int { return WaitChild(c.Pid) }

// Signal signals the init: the monitor's child, so its pid cannot name
// another process before Wait has reaped it.
func (c *ChildRuntime) Signal(sig syscall.Signal) error { return unix.Kill(c.Pid, sig) }

// Destroy removes libcontainer's state of the container.
func (c *ChildRuntime) Destroy() {
	if err := os.RemoveAll(c.StateDir); err != nil {
		warn(err)
	}
}

// WaitChild reaps child pid and gives its exit code (128+signal when a
// signal ended it; 255 when it is not the caller's child).
func WaitChild(pid int) int {
	for {
		var ws unix.WaitStatus
		_, err := unix.Wait4(pid, &ws, 0, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return exitUnknown
		}
		return ExitCode(ws)
	}
}

// ExitCode is Docker's exit code of a wait status: 128+signal when a
// signal ended the process.
func ExitCode(ws unix.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}
