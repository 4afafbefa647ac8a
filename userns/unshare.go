package userns

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// IsUnshareCall reports whether this process was started as rootlesskit's
// embedded "unshare": its child makes the detached network namespace by
// running its own executable as `unshare -n mount --bind /proc/self/ns/net
// PATH` (so that no unshare binary, nor an AppArmor rule for it, is
// needed). lodge-keeper is that executable, so it must answer the call.
func IsUnshareCall() bool { return filepath.Base(os.Args[0]) == "unshare" }

// RunUnshareCall does what that command line asks: a new network namespace,
// bind-mounted on PATH. Only this exact form is accepted.
func RunUnshareCall(args []string) error {
	if len(args) != 5 || args[0] != "-n" || args[1] != "mount" || args[2] != "--bind" || args[3] != "/proc/self/ns/net" {
		return fmt.Errorf("unshare: only `unshare -n mount --bind /proc/self/ns/net PATH` is supported, got %q", args)
	}
	// Namespaces belong to threads; keep this goroutine on the one that
	// unshares, and name that thread's namespace explicitly.
	runtime.LockOSThread()
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("unshare: new network namespace: %w", err)
	}
	if err := unix.Mount("/proc/thread-self/ns/net", args[4], "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("unshare: bind %s: %w", args[4], err)
	}
	return nil
}
