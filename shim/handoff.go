package shim

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// BinaryName is the shim's binary, installed beside lodge-monitor. It is
// written in C (shim/c): it lives as long as the container, and a Go
// runtime would be most of its memory. It runs the loop of this package
// (Run), speaking the same protocol; the two are kept in step by
// TestCShimProtocol and the end-to-end tests.
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
		if !strings.HasPrefix(kv, envHandoff+"=") {
			env = append(env, kv)
		}
	}
	env = append(env, envHandoff+"="+string(b))
	return unix.Exec(exe, args, env)
}

// StateDir is libcontainer's directory of the container.
func StateDir(cfg MonitorConfig) string { return filepath.Join(cfg.StateRoot, cfg.ID) }

// NopCloser is a writer whose Close does nothing: a tty's master is
// the container's input and output both, and input ending must not
// close it.
type NopCloser struct{ io.Writer }

// Close does nothing.
func (NopCloser) Close() error { return nil }
