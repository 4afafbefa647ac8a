package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"

	"github.com/opencontainers/runc/libcontainer"
	"golang.org/x/sys/unix"

	"github.com/lodge-containers/lodge/paths"
)

// An exec runs through lodge-exec (shim/c/exec.c) when it is installed and
// the container has an exec plan (execplan.go): a static C program, so no
// Go program starts for it. Otherwise it runs through lodge-monitor, not
// in the caller: libcontainer
// starts a process by re-executing its own binary as its init, and the
// caller is lodged, whose every exec pays for the init functions of
// everything linked into it (the image store, registries, networks) and
// for a sealed copy of a ~50 MiB binary. lodge-monitor links libcontainer
// and little else. It runs the process (runExec) and stays its parent,
// to wait for it and say its exit code.
//
// Both speak this protocol. The helper's descriptors: 3 the control socket (one execRequest in;
// one execReply with the pid or the error, then one with the exit code,
// out), 4 the console socket with a tty, else stdin (when the exec has
// input), 5 stdout, 6 stderr. Its own stdio is /dev/null.

const envExec = "_LODGE_EXEC"

// IsExec reports whether this process was started as an exec helper.
func IsExec() bool { return os.Getenv(envExec) != "" }

type execRequest struct {
	StateRoot      string   `json:"stateRoot"`
	ID             string   `json:"id"`
	Args           []string `json:"args"`
	Env            []string `json:"env"`
	Cwd            string   `json:"cwd"`
	UID            int      `json:"uid"`
	GID            int      `json:"gid"`
	AdditionalGids []int    `json:"gids,omitempty"`
	Tty            bool     `json:"tty,omitempty"`
	Width          uint16   `json:"width,omitempty"`
	Height         uint16   `json:"height,omitempty"`
	Stdin          bool     `json:"stdin,omitempty"`
	// Plan is the container's exec plan, for lodge-exec (lodge-monitor
	// reads libcontainer's state instead).
	Plan string `json:"plan,omitempty"`
}

type execReply struct {
	Pid   int    `json:"pid,omitempty"`
	Error string `json:"error,omitempty"`
	Exit  *int   `json:"exit,omitempty"`
}

// execHelper is lodge-monitor's path, when it is a binary of its own (a
// lodged standing in for a missing one gains nothing).
func execHelper() (string, bool) {
	exe, err := MonitorBinary()
	if err != nil {
		return "", false
	}
	self, err := os.Executable()
	return exe, err == nil && self != exe
}

// CExecBinaryName is lodge-exec, installed beside lodged.
const CExecBinaryName = "lodge-exec"

// CExecBinary is lodge-exec's path, or why it is not there.
var CExecBinary = sync.OnceValues(func() (string, error) { return paths.Helper(CExecBinaryName) })

// helperExec starts the exec through the helper at exe: lodge-exec with
// the exec plan at plan, or lodge-monitor (plan "").
func helperExec(exe, plan, stateRoot, id string, spec ExecSpec) (*ExecProcess, error) {
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	ctl := os.NewFile(uintptr(pair[0]), "exec-ctl")
	ctlChild := os.NewFile(uintptr(pair[1]), "exec-ctl-child")
	req := execRequest{StateRoot: stateRoot, ID: id, Args: spec.Args, Env: spec.Env, Cwd: spec.Cwd,
		UID: spec.UID, GID: spec.GID, AdditionalGids: spec.AdditionalGids,
		Tty: spec.Tty, Width: spec.Width, Height: spec.Height, Plan: plan}
	e := &ExecProcess{}
	var consoleParent *os.File
	childEnds := []*os.File{ctlChild}
	fail := func(err error) (*ExecProcess, error) {
		ctl.Close()
		closeAll(childEnds)
		if consoleParent != nil {
			consoleParent.Close()
		}
		return nil, err
	}
	extra := []*os.File{ctlChild, nil, nil, nil}
	if spec.Tty {
		cp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fail(err)
		}
		consoleParent = os.NewFile(uintptr(cp[0]), "console-parent")
		child := os.NewFile(uintptr(cp[1]), "console-child")
		childEnds = append(childEnds, child)
		extra[1] = child
	} else {
		in, out, errw, err := e.plumb(spec)
		if err != nil {
			return fail(err)
		}
		childEnds = append(childEnds, in, out, errw)
		extra[1], extra[2], extra[3] = in, out, errw
		req.Stdin = in != nil
	}
	cmd := exec.Command(exe)
	cmd.Env = append(monitorEnv(), envExec+"=1")
	cmd.ExtraFiles = extra
	if err := cmd.Start(); err != nil {
		return fail(err)
	}
	closeAll(childEnds)
	childEnds = nil
	dec := json.NewDecoder(ctl)
	var rep execReply
	if err := json.NewEncoder(ctl).Encode(req); err == nil {
		err = dec.Decode(&rep)
		if err != nil {
			rep.Error = fmt.Sprintf("exec helper: %v", err)
		}
	} else {
		rep.Error = fmt.Sprintf("exec helper: %v", err)
	}
	if rep.Error != "" {
		cmd.Process.Kill()
		_ = cmd.Wait() // only to reap it: it was killed, or said why it failed
		return fail(errors.New(rep.Error))
	}
	e.Pid = rep.Pid
	e.wait = func() int {
		defer ctl.Close()
		var end execReply
		code := exitUnknownCode
		if dec.Decode(&end) == nil && end.Exit != nil {
			code = *end.Exit
		}
		// The helper's own status says nothing more than its reply did
		// (or exitUnknownCode says it is unknown).
		_ = cmd.Wait()
		return code
	}
	if consoleParent != nil {
		defer consoleParent.Close()
		master, err := recvFd(consoleParent)
		if err != nil {
			kerr := killGone(syscall.Kill(rep.Pid, syscall.SIGKILL))
			if kerr == nil {
				e.wait() // its helper reports the exit, and is reaped
			}
			return nil, errors.Join(fmt.Errorf("receiving the exec's console: %w", err), kerr)
		}
		e.useConsole(master, spec)
	}
	return e, nil
}

// exitUnknownCode is an exec's code when its helper died before saying.
const exitUnknownCode = 255

// ExecMain is the exec helper's main (IsExec): it runs one process in a
// running container as its request says, and waits for it.
func ExecMain() error {
	ctl := os.NewFile(3, "exec-ctl")
	defer ctl.Close()
	var req execRequest
	if err := json.NewDecoder(ctl).Decode(&req); err != nil {
		return err
	}
	enc := json.NewEncoder(ctl)
	p, err := runExec(req)
	if err != nil {
		return enc.Encode(execReply{Error: err.Error()})
	}
	pid, _ := p.Pid()
	if err := enc.Encode(execReply{Pid: pid}); err != nil {
		// lodged is gone: nobody would see the process or its end.
		kerr := killGone(p.Signal(syscall.SIGKILL))
		if kerr == nil {
			processExitCode(p)
		}
		return errors.Join(err, kerr)
	}
	code := processExitCode(p)
	return enc.Encode(execReply{Exit: &code})
}

// runExec starts the process, with the helper's descriptors 4 to 6 as
// its console socket or stdio, then closes them here: the process holds
// them now, and its output must end when it does.
func runExec(req execRequest) (*libcontainer.Process, error) {
	var fds []*os.File
	defer func() { closeAll(fds) }()
	c, err := libcontainer.Load(req.StateRoot, req.ID)
	if err != nil {
		return nil, fmt.Errorf("container %s is not running here: %w", req.ID, err)
	}
	p := &libcontainer.Process{
		Args: req.Args, Env: req.Env, Cwd: req.Cwd,
		UID: req.UID, GID: req.GID, AdditionalGroups: req.AdditionalGids,
	}
	if req.Tty {
		sock := os.NewFile(4, "console-socket")
		fds = append(fds, sock)
		p.ConsoleSocket = sock
		p.ConsoleWidth, p.ConsoleHeight = req.Width, req.Height
	} else {
		if req.Stdin {
			in := os.NewFile(4, "stdin")
			fds = append(fds, in)
			p.Stdin = in
		}
		out, errw := os.NewFile(5, "stdout"), os.NewFile(6, "stderr")
		fds = append(fds, out, errw)
		p.Stdout, p.Stderr = out, errw
	}
	if err := c.Run(p); err != nil {
		return nil, err
	}
	return p, nil
}
