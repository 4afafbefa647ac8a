package shim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// BinaryName is the shim's binary, installed beside lodge-monitor.
const BinaryName = "lodge-shim"

// envHandoff carries a Handoff, as JSON, across the execve.
const envHandoff = "_LODGE_SHIM"

// Handoff is what lodge-monitor gives lodge-shim when it becomes it: the
// container, and the numbers of the open descriptors (inherited across
// the execve) that hold it.
type Handoff struct {
	Config MonitorConfig `json:"config"`
	Pid    int           `json:"pid"`
	// Adopted says the container runs already under an init that is not
	// this process's child (Config.Adopt).
	Adopted bool     `json:"adopted,omitempty"`
	Ctl     int      `json:"ctl"`
	Attach  int      `json:"attach"`
	Outputs []int    `json:"outputs"`
	Streams []string `json:"streams"`
	Stdin   int      `json:"stdin"` // -1: none (a tty takes input on its master)
}

// Exec replaces the calling process with the shim binary exe (args as
// its arguments, the first its name): it returns only on failure. The
// descriptors h names must be open and not close-on-exec.
func (h Handoff) Exec(exe string, args []string) error {
	b, err := json.Marshal(h)
	if err != nil {
		return err
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, envHandoff+"=") && !strings.HasPrefix(kv, "GOMAXPROCS=") && !strings.HasPrefix(kv, "GOGC=") {
			env = append(env, kv)
		}
	}
	// One P: the shim mostly sleeps, and each P costs memory of its own.
	env = append(env, envHandoff+"="+string(b), "GOMAXPROCS=1")
	return unix.Exec(exe, args, env)
}

// Main is lodge-shim's main: it takes over the container the Handoff in
// its environment names, and returns when the container has ended.
func Main() error {
	v := os.Getenv(envHandoff)
	if v == "" {
		return errors.New("lodge-shim is started by lodge-monitor, not by hand")
	}
	if err := os.Unsetenv(envHandoff); err != nil {
		return err
	}
	var h Handoff
	if err := json.Unmarshal([]byte(v), &h); err != nil {
		return fmt.Errorf("handoff: %w", err)
	}
	f, err := h.files()
	if err != nil {
		return err
	}
	var rt Runtime
	if h.Adopted && h.Config.Adopt != nil {
		rt = &AdoptRuntime{Init: *h.Config.Adopt, Forget: func() {
			if err := os.RemoveAll(StateDir(h.Config)); err != nil {
				warn(err)
			}
		}}
	} else {
		rt = &ChildRuntime{Pid: h.Pid, StateDir: StateDir(h.Config)}
	}
	return Run(h.Config, rt, h.Pid, f, h.Adopted)
}

// StateDir is libcontainer's directory of the container.
func StateDir(cfg MonitorConfig) string { return filepath.Join(cfg.StateRoot, cfg.ID) }

// files opens what the descriptors of h hold.
func (h Handoff) files() (Files, error) {
	var f Files
	var err error
	if f.Ctl, err = fileListener(h.Ctl); err != nil {
		return f, fmt.Errorf("control socket: %w", err)
	}
	if f.Attach, err = fileListener(h.Attach); err != nil {
		return f, fmt.Errorf("attach socket: %w", err)
	}
	for i, fd := range h.Outputs {
		f.Outputs = append(f.Outputs, pollable(fd, h.Streams[i]))
	}
	f.Streams = h.Streams
	if h.Config.Tty && len(f.Outputs) == 1 {
		f.Console = f.Outputs[0]
	}
	switch {
	case h.Stdin >= 0:
		f.Stdin = pollable(h.Stdin, "stdin")
	case f.Console != nil && h.Config.OpenStdin: // a tty's master takes input too
		f.Stdin = NopCloser{f.Console}
	}
	return f, nil
}

// pollable makes an inherited descriptor a file read and written through
// the runtime's poller: an idle stream then holds no thread.
func pollable(fd int, name string) *os.File {
	unix.CloseOnExec(fd)
	// Left blocking (it cannot be: the descriptor is ours), the file still
	// works, only holding a thread while it waits.
	_ = unix.SetNonblock(fd, true)
	return os.NewFile(uintptr(fd), name)
}

func fileListener(fd int) (net.Listener, error) {
	f := os.NewFile(uintptr(fd), "listener")
	if f == nil {
		return nil, errors.New("no descriptor")
	}
	defer f.Close()
	return net.FileListener(f)
}

// NopCloser is a writer whose Close does nothing: a tty's master is
// the container's input and output both, and input ending must not
// close it.
type NopCloser struct{ io.Writer }

// Close does nothing.
func (NopCloser) Close() error { return nil }
