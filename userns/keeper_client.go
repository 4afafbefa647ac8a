package userns

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lodge-containers/lodge/paths"
)

// The side of the keeper that lodged's other stages use: starting it,
// re-joining it, and asking it for a daemon.

// ErrNoKeeper means no keeper answers on the socket.
var ErrNoKeeper = errors.New("no keeper")

// Daemon is an API daemon the keeper started for this process.
type Daemon struct {
	Pid  int
	conn *net.UnixConn
}

// EnvListenFD names the descriptor of an API listener the daemon stage
// inherited (set by the keeper when StartDaemonWith got one).
const EnvListenFD = "_LODGE_LISTEN_FD"

// StartDaemon asks the keeper at runDir to start lodged's daemon stage with
// args, env and this process's stdio. It returns ErrNoKeeper when nobody
// answers.
func StartDaemon(runDir string, args, env []string) (*Daemon, error) {
	return StartDaemonWith(runDir, args, env, nil)
}

// StartDaemonWith is StartDaemon that also hands the daemon listener (a
// socket systemd made for lodged), which it then serves instead of
// making its own; nil for none. The caller keeps its copy.
func StartDaemonWith(runDir string, args, env []string, listener *os.File) (*Daemon, error) {
	// The keeper gets this process's environment and stdio: only one
	// running as this user may.
	conn, err := paths.DialOwner(context.Background(), KeeperSocket(runDir), os.Getuid())
	if errors.Is(err, paths.ErrNotOwner) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoKeeper, err)
	}
	c := conn.(*net.UnixConn)
	dir, _ := os.Getwd()
	b, _ := json.Marshal(startRequest{Exe: ownExecutable(), Args: args, Env: env, Dir: dir})
	fds := []int{int(os.Stdin.Fd()), int(os.Stdout.Fd()), int(os.Stderr.Fd())}
	if listener != nil {
		fds = append(fds, int(listener.Fd()))
	}
	rights := unix.UnixRights(fds...)
	if _, _, err := c.WriteMsgUnix(b, rights, nil); err != nil {
		c.Close()
		return nil, fmt.Errorf("%w: %v", ErrNoKeeper, err)
	}
	var rep keeperReply
	if err := json.NewDecoder(c).Decode(&rep); err != nil {
		c.Close()
		return nil, fmt.Errorf("%w: %v", ErrNoKeeper, err)
	}
	if rep.Error != "" {
		c.Close()
		return nil, errors.New(rep.Error)
	}
	return &Daemon{Pid: rep.Pid, conn: c}, nil
}

// Wait blocks until the daemon ends and returns its exit code (128+signal
// when killed).
func (d *Daemon) Wait() int {
	defer d.conn.Close()
	var rep keeperReply
	if err := json.NewDecoder(d.conn).Decode(&rep); err != nil || rep.Exit == nil {
		return 1
	}
	return *rep.Exit
}

// WaitBinary is lodge-wait (shim/c/wait.c): what the foreground lodged
// execs once its daemon answers, to wait for it without a Go runtime.
const WaitBinary = "lodge-wait"

// waitedSignals are the signals the foreground lodged passes on to its
// daemon; lodge-wait does the same.
var waitedSignals = []unix.Signal{unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT}

// ExecWaiter replaces this process with the waiter at exe (lodge-wait),
// which waits on d's keeper connection for the daemon's exit status and
// passes the signals on, telling systemd at notifySocket ("" for none)
// that it stops. It returns only when the exec failed, with d as it was.
// The signals the waiter passes on are blocked across the exec, so one
// that comes in between waits for the waiter rather than killing it.
func (d *Daemon) ExecWaiter(exe, notifySocket string) error {
	raw, err := d.conn.SyscallConn()
	if err != nil {
		return err
	}
	var execErr error
	err = raw.Control(func(fdp uintptr) {
		fd := int(fdp)
		if _, execErr = unix.FcntlInt(fdp, unix.F_SETFD, 0); execErr != nil {
			return
		}
		// Only reached when the exec failed.
		defer func() { _, _ = unix.FcntlInt(fdp, unix.F_SETFD, unix.FD_CLOEXEC) }()
		args := []string{exe, strconv.Itoa(d.Pid), strconv.Itoa(fd)}
		if notifySocket != "" {
			args = append(args, notifySocket)
		}
		// The mask is per thread: this one blocks them and execs.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		var set, old unix.Sigset_t
		for _, s := range waitedSignals {
			set.Val[(s-1)/64] |= 1 << ((uint(s) - 1) % 64)
		}
		if execErr = unix.PthreadSigmask(unix.SIG_BLOCK, &set, &old); execErr != nil {
			return
		}
		execErr = unix.Exec(exe, args, os.Environ())
		_ = unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil)
	})
	if err != nil {
		return err
	}
	return execErr
}

// StartKeeper starts the keeper for runDir in the background (a new
// session, logging to log) by running lodge-keeper with env added, and
// waits until it answers on its socket. It returns an error holding the
// log's end if the keeper exits first.
func StartKeeper(runDir string, env []string, logPath string, wait time.Duration) error {
	exe, err := KeeperExecutable()
	if err != nil {
		return err
	}
	return startKeeper(runDir, exec.Command(exe), env, logPath, wait)
}

// StartAdoptKeeper starts a keeper from a daemon whose keeper died, in the
// daemon's namespaces and its own session so that it outlives the
// daemon, logging to logPath. It does not wait: the caller reaps it.
func StartAdoptKeeper(logPath string) (*exec.Cmd, error) {
	exe, err := KeeperExecutable()
	if err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, envStage+"=") {
			env = append(env, kv)
		}
	}
	cmd := exec.Command(exe)
	cmd.Env = append(env, envStage+"=keeper", EnvKeeperAdopt)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return cmd, nil
}

// RejoinKeeper starts a keeper inside the user and mount namespaces of
// the process pid (a surviving container monitor, whose namespaces are
// lodged's), where it takes over the uplink and the port driver as after
// a death of the host side, and waits until it answers. It is how a start
// comes back to running containers whose keeper and daemon are both gone:
// they keep exec, ports and the uplink, which a new namespace would cut
// them off from. util-linux's nsenter enters the namespaces, which needs a
// single-threaded process. Callers verify that pid is lodged's.
func RejoinKeeper(runDir string, pid int, env []string, logPath string, wait time.Duration) error {
	exe, err := KeeperExecutable()
	if err != nil {
		return err
	}
	nsenter, err := exec.LookPath("nsenter")
	if err != nil {
		return fmt.Errorf("nsenter (util-linux) is needed to come back into the running containers' namespaces: %w", err)
	}
	args := []string{"--target", strconv.Itoa(pid), "--user", "--mount", "--preserve-credentials", "--", exe}
	return startKeeper(runDir, exec.Command(nsenter, args...), append(env, envStage+"=keeper", EnvKeeperAdopt), logPath, wait)
}

func startKeeper(runDir string, cmd *exec.Cmd, env []string, logPath string, wait time.Duration) error {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("unix", KeeperSocket(runDir)); err == nil {
			c.Close()
			return nil
		}
		select {
		case err := <-exited:
			b, _ := os.ReadFile(logPath)
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			if len(lines) > 8 {
				lines = lines[len(lines)-8:]
			}
			why := "it exited before it answered"
			if err != nil {
				why = err.Error()
			}
			return fmt.Errorf("setting up the user namespace failed (%s); %s ends:\n%s", why, logPath, strings.Join(lines, "\n"))
		case <-time.After(10 * time.Millisecond):
		}
	}
	return fmt.Errorf("the namespace keeper did not answer within %s; see %s", wait, logPath)
}

// CheckPin tells the keeper at runDir that a container started (or was
// adopted), or with ended that one ended, so that it need not poll its
// children to know whether the namespaces need a pin (a process holding
// them should the keeper and the daemon both die): it starts one, or
// wakes the one there to see whether it is still needed. It waits for
// the keeper's answer, not for the pin.
func CheckPin(runDir string, ended bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := paths.DialOwner(ctx, KeeperSocket(runDir), os.Getuid())
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	b, _ := json.Marshal(startRequest{Check: true, Ended: ended})
	if _, err := conn.Write(b); err != nil {
		return err
	}
	var rep keeperReply
	if err := json.NewDecoder(conn).Decode(&rep); err != nil {
		return err
	}
	if rep.Error != "" {
		return errors.New(rep.Error)
	}
	return nil
}
