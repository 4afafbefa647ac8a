// Command lodge-init is the init `run --init` puts at pid 1 in a container:
// it starts the container's command, forwards the signals it receives to
// it, reaps every orphan that the kernel re-parents to pid 1, and exits
// with the command's status (128+n when a signal n ended it), as Docker's
// docker-init (tini) does.
//
// lodged bind-mounts it into containers whose images share nothing with
// the host, so it must be a static binary: build it with CGO_ENABLED=0.
package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

func main() {
	args := os.Args[1:]
	if len(args) == 1 && args[0] == "--pause" {
		os.Exit(pause())
	}
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "lodge-init: usage: lodge-init [--] COMMAND [ARG...] | lodge-init --pause")
		os.Exit(2)
	}
	os.Exit(run(args))
}

func run(args []string) int {
	// Before the child exists, so that no signal meant for it is lost.
	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs)
	path, err := lookPath(args[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "lodge-init: %s: %v\n", args[0], err)
		return 127
	}
	p, err := os.StartProcess(path, args, &os.ProcAttr{
		Files: []*os.File{os.Stdin, os.Stdout, os.Stderr},
		Env:   os.Environ(),
		// The child gets the terminal's foreground group, as under a shell,
		// so ctrl-c reaches it (and not only pid 1, which forwards it).
		Sys: &syscall.SysProcAttr{Setpgid: true, Foreground: isTerminal(0), Ctty: 0},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "lodge-init: %s: %v\n", args[0], err)
		if os.IsPermission(err) {
			return 126
		}
		return 127
	}
	for sig := range sigs {
		s := sig.(syscall.Signal)
		switch s {
		case unix.SIGCHLD:
			if code, done := reap(p.Pid); done {
				return code
			}
		case unix.SIGURG:
			// The Go runtime's own preemption signal, not a user's.
		default:
			// A child that just exited (ESRCH) is reaped with the
			// SIGCHLD already on its way; anything else (a setuid child
			// this user may not signal) is said, as lodge-init's own
			// errors are, on the container's stderr.
			if err := unix.Kill(p.Pid, s); err != nil && !errors.Is(err, unix.ESRCH) {
				fmt.Fprintf(os.Stderr, "lodge-init: forwarding %v to %d: %v\n", s, p.Pid, err)
			}
		}
	}
	return 0
}

// pause is a pod sandbox's pid 1 (lodge's CRI): it only holds the pod's
// namespaces, reaping whatever is reparented to it, until SIGTERM or
// SIGINT ends it.
func pause() int {
	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGINT, unix.SIGCHLD)
	for s := range sigs {
		if s == unix.SIGCHLD {
			reap(-1)
			continue
		}
		return 0
	}
	return 0
}

// reap collects every exited child without blocking. It reports the main
// child's exit code once the main child is among them.
func reap(main int) (int, bool) {
	code, done := 0, false
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err != nil || pid <= 0 {
			return code, done
		}
		if pid != main {
			continue
		}
		done = true
		code = ws.ExitStatus()
		if ws.Signaled() {
			code = 128 + int(ws.Signal())
		}
	}
}

func isTerminal(fd int) bool {
	_, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	return err == nil
}

// lookPath finds a command on the container's PATH, as exec would.
func lookPath(name string) (string, error) {
	for _, c := range name {
		if c == '/' {
			return name, nil
		}
	}
	path := os.Getenv("PATH")
	if path == "" {
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	}
	for _, dir := range splitList(path) {
		p := dir + "/" + name
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("executable file not found in $PATH")
}

func splitList(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ':' {
			if i > start {
				out = append(out, s[start:i])
			}
			start = i + 1
		}
	}
	return out
}
