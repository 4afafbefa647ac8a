// Package nstest puts kernel tests in a user namespace of their own, as
// lodged's namespace is: only the caller's ids mapped (which any user may
// do), with a mount namespace. It is for tests only; it owns no
// capability of lodge.
package nstest

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/lodge-containers/lodge/internal/testgate"
)

const envInNS = "_LODGE_NSTEST_IN_USERNS"

// Reexec re-executes the test binary as root of a new user and mount
// namespace unless it is root already or runs there, and exits with the
// child's code. Call it first in TestMain, as rootlesskit's port test
// suite does.
func Reexec() {
	if os.Getuid() == 0 || os.Getenv(envInNS) != "" {
		return
	}
	cmd := exec.Command("/proc/self/exe", os.Args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), envInNS+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:                 syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS,
		UidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
		GidMappingsEnableSetgroups: false,
	}
	if err := cmd.Run(); err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			os.Exit(ee.ExitCode())
		}
		fmt.Fprintln(os.Stderr, "entering a user namespace:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// RequireRootless skips (locally) or fails (CI) unless the test runs as
// root of a user namespace that is not the initial one.
func RequireRootless(t *testing.T) {
	t.Helper()
	b, err := os.ReadFile("/proc/self/uid_map")
	if err == nil && !strings.Contains(string(b), "4294967295") {
		return
	}
	testgate.SkipOrFail(t, "not in a user namespace: run the tests as an unprivileged user")
}
