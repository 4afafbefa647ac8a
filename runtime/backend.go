package runtime

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runc/libcontainer/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/lodge-containers/lodge/shim"
)

// procIO is what a container's first process is given: the child ends of
// pipes without a tty (nil stdin: no input), or a console of this size.
type procIO struct {
	stdin, stdout, stderr *os.File
	tty                   bool
	width, height         uint16
}

// backend creates one container for its monitor: libcontainer embedded in
// lodge-monitor, or an installed OCI runtime binary (--runtime runc|crun).
// Once created, the container is the shim's loop's (shim.Runtime).
type backend interface {
	// create makes the container and its first process, stopped before
	// the program runs; with a tty it returns the console's master.
	create(spec *specs.Spec, pio procIO) (pid int, console *os.File, err error)
	signal(sig syscall.Signal) error
	// destroy removes what the runtime keeps of the container.
	destroy() error
}

func newBackend(cfg shim.MonitorConfig) backend {
	if cfg.Runtime != "" {
		return &ociBackend{bin: cfg.Runtime, root: OCIStateRoot(cfg.StateRoot, cfg.Runtime), id: cfg.ID, bundle: cfg.Bundle, sockDir: cfg.SockDir}
	}
	return &lcBackend{cfg: cfg}
}

// OCIStateRoot is where an OCI runtime binary keeps its containers' state:
// beside libcontainer's, one directory per runtime.
func OCIStateRoot(stateRoot, bin string) string {
	return filepath.Join(stateRoot, "oci-"+filepath.Base(bin))
}

// lcBackend is runc's libcontainer in this process.
type lcBackend struct {
	cfg shim.MonitorConfig
	c   *libcontainer.Container
	p   *libcontainer.Process
}

func (b *lcBackend) create(spec *specs.Spec, pio procIO) (int, *os.File, error) {
	lc, err := specconv.CreateLibcontainerConfig(&specconv.CreateOpts{
		CgroupName:      b.cfg.ID,
		NoNewKeyring:    true,
		Spec:            spec,
		RootlessCgroups: true, // errors from cgroups lodge cannot write are not fatal
	})
	if err != nil {
		return 0, nil, fmt.Errorf("container config: %w", err)
	}
	// specconv leaves the spec's rlimits to the caller (runc sets them on
	// its Process); on the config they reach the init and every exec.
	rl, err := configRlimits(spec)
	if err != nil {
		return 0, nil, err
	}
	lc.Rlimits = rl
	var stale error
	if old, err := libcontainer.Load(b.cfg.StateRoot, b.cfg.ID); err == nil {
		// Left by an earlier run of the same container; if it cannot go,
		// Create fails on it and says why.
		stale = old.Destroy()
	}
	c, err := libcontainer.Create(b.cfg.StateRoot, b.cfg.ID, lc)
	if err != nil {
		if stale != nil {
			err = fmt.Errorf("%w (removing an earlier run's state: %v)", err, stale)
		}
		return 0, nil, err
	}
	p := &libcontainer.Process{
		Args: spec.Process.Args,
		Env:  spec.Process.Env,
		Cwd:  spec.Process.Cwd,
		UID:  int(spec.Process.User.UID),
		GID:  int(spec.Process.User.GID),
		Init: true,
	}
	for _, g := range spec.Process.User.AdditionalGids {
		p.AdditionalGroups = append(p.AdditionalGroups, int(g))
	}
	var consoleParent *os.File
	if pio.tty {
		pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			_ = c.Destroy() // best effort on an error path: the next create of this ID destroys what is left
			return 0, nil, err
		}
		consoleParent = os.NewFile(uintptr(pair[0]), "console-parent")
		defer consoleParent.Close()
		child := os.NewFile(uintptr(pair[1]), "console-child")
		defer child.Close()
		p.ConsoleSocket = child
		p.ConsoleWidth, p.ConsoleHeight = pio.width, pio.height
	} else {
		if pio.stdin != nil {
			p.Stdin = pio.stdin
		}
		p.Stdout, p.Stderr = pio.stdout, pio.stderr
	}
	if err := c.Start(p); err != nil {
		_ = c.Destroy() // as above; err's text decides the exit code (FailureCode), so nothing is added to it
		return 0, nil, err
	}
	var console *os.File
	if consoleParent != nil {
		if console, err = recvFd(consoleParent); err != nil {
			kerr := killGone(p.Signal(unix.SIGKILL))
			_ = c.Destroy() // as above
			return 0, nil, errors.Join(fmt.Errorf("receiving the console: %w", err), kerr)
		}
	}
	b.c, b.p = c, p
	pid, _ := p.Pid()
	return pid, console, nil
}

// processExitCode waits for a libcontainer process and gives its exit code.
func processExitCode(p *libcontainer.Process) int {
	state, _ := p.Wait()
	if state == nil {
		return 255
	}
	if ws, ok := state.Sys().(syscall.WaitStatus); ok {
		return shim.ExitCode(unix.WaitStatus(ws))
	}
	return state.ExitCode()
}

func (b *lcBackend) signal(sig syscall.Signal) error { return b.p.Signal(sig) }

func (b *lcBackend) destroy() error { return b.c.Destroy() }

// ociBackend drives an OCI runtime binary (runc, crun) with its command
// line: create, start, delete. The monitor is a child subreaper, so the
// container's init, whose parent (`runtime create`) exits, becomes its
// child and is waited for like libcontainer's.
type ociBackend struct {
	bin, root, id, bundle, sockDir string
	pid                            int
}

// ociCommand is the runtime binary with lodge's global options: its state
// root, and errors logged as JSON to a file, where they are read back.
func ociCommand(bin, root, logPath string, args ...string) *exec.Cmd {
	return exec.Command(bin, append([]string{"--root", root, "--log", logPath, "--log-format", "json"}, args...)...)
}

func (b *ociBackend) logPath() string { return filepath.Join(b.bundle, "runtime.log") }

// run runs one runtime command to its end; its error carries the runtime's
// own message.
func (b *ociBackend) run(args ...string) error {
	cmd := ociCommand(b.bin, b.root, b.logPath(), args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	return ociError(cmd.Run(), b.logPath(), stderr.String())
}

// ociError turns a failed runtime command into an error with the last
// error the runtime logged (or printed).
func ociError(err error, logPath, stderr string) error {
	if err == nil {
		return nil
	}
	msg := lastLoggedError(logPath)
	if msg == "" {
		msg = strings.TrimSpace(stderr)
	}
	if msg == "" {
		msg = err.Error()
	}
	return errors.New(msg)
}

// lastLoggedError is the message of the last error-level line of a runtime's
// JSON log.
func lastLoggedError(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	msg := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l struct{ Level, Msg string }
		if json.Unmarshal(sc.Bytes(), &l) == nil && (l.Level == "error" || l.Level == "fatal") {
			msg = l.Msg
		}
	}
	return msg
}

func (b *ociBackend) create(_ *specs.Spec, pio procIO) (int, *os.File, error) {
	if err := os.MkdirAll(b.root, 0o700); err != nil {
		return 0, nil, err
	}
	// Left by an earlier run of the same container, or nothing: the
	// runtime says "does not exist" then, and a real failure to delete
	// shows when create fails on the same ID.
	_ = b.run("delete", "--force", b.id)
	if err := removeIfAny(b.logPath()); err != nil {
		return 0, nil, err
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return 0, nil, fmt.Errorf("becoming the container's subreaper: %w", err)
	}
	pidFile := filepath.Join(b.bundle, "runtime.pid")
	// An old pid here would be read as the new container's.
	if err := removeIfAny(pidFile); err != nil {
		return 0, nil, err
	}
	args := []string{"create", "--bundle", b.bundle, "--pid-file", pidFile}
	var consoleL *net.UnixListener
	if pio.tty {
		var err error
		if consoleL, err = listenConsole(filepath.Join(b.sockDir, "console.sock")); err != nil {
			return 0, nil, err
		}
		defer consoleL.Close()
		args = append(args, "--console-socket", consoleL.Addr().String())
	}
	cmd := ociCommand(b.bin, b.root, b.logPath(), append(args, b.id)...)
	if !pio.tty {
		// The container's first process inherits these.
		cmd.Stdin, cmd.Stdout, cmd.Stderr = pio.stdin, pio.stdout, pio.stderr
	}
	if err := cmd.Run(); err != nil {
		return 0, nil, ociError(err, b.logPath(), "")
	}
	var console *os.File
	if consoleL != nil {
		var err error
		if console, err = acceptConsole(consoleL, pio.width, pio.height); err != nil {
			return 0, nil, errors.Join(err, b.destroy())
		}
	}
	pidb, err := os.ReadFile(pidFile)
	if err != nil {
		return 0, nil, errors.Join(fmt.Errorf("the runtime wrote no pid: %w", err), b.destroy())
	}
	b.pid, err = strconv.Atoi(strings.TrimSpace(string(pidb)))
	if err != nil {
		return 0, nil, errors.Join(fmt.Errorf("the runtime's pid file: %w", err), b.destroy())
	}
	return b.pid, console, nil
}

// Start lets the container run (shim.Runtime, as are the three below).
func (b *ociBackend) Start() error { return b.run("start", b.id) }

// Wait reaps the init, the monitor's child as its subreaper.
func (b *ociBackend) Wait() int { return shim.WaitChild(b.pid) }

// Signal signals the init.
func (b *ociBackend) Signal(sig syscall.Signal) error { return b.signal(sig) }

func (b *ociBackend) signal(sig syscall.Signal) error { return unix.Kill(b.pid, sig) }

// Destroy deletes the container from the runtime's state. The shim's
// loop has no one to return to: the failure goes to the monitor's log
// (its stderr), and the next create of the same ID deletes it again.
func (b *ociBackend) Destroy() {
	if err := b.destroy(); err != nil {
		fmt.Fprintln(os.Stderr, "lodge-monitor: deleting the container from", b.bin+":", err)
	}
}

func (b *ociBackend) destroy() error { return b.run("delete", "--force", b.id) }

// listenConsole listens where a runtime sends a console's master (its
// --console-socket).
func listenConsole(path string) (*net.UnixListener, error) {
	if err := removeIfAny(path); err != nil {
		return nil, err
	}
	return net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
}

// acceptConsole takes the master a runtime sends and sizes it.
func acceptConsole(l *net.UnixListener, width, height uint16) (*os.File, error) {
	if err := l.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return nil, err
	}
	conn, err := l.AcceptUnix()
	if err != nil {
		return nil, fmt.Errorf("waiting for the console: %w", err)
	}
	defer conn.Close()
	f, err := conn.File()
	if err != nil {
		return nil, err
	}
	defer f.Close()
	master, err := recvFd(f)
	if err != nil {
		return nil, fmt.Errorf("receiving the console: %w", err)
	}
	if width > 0 && height > 0 {
		if err := unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: height, Col: width}); err != nil {
			_ = master.Close() // only opened here
			return nil, fmt.Errorf("sizing the console: %w", err)
		}
	}
	return master, nil
}

// ociExec runs an exec through the runtime binary's `exec`, which stays the
// process's parent and exits with its code.
func ociExec(stateRoot, id string, spec ExecSpec) (*ExecProcess, error) {
	root := OCIStateRoot(stateRoot, spec.Runtime)
	dir, err := os.MkdirTemp(root, "exec-")
	if err != nil {
		return nil, fmt.Errorf("container %s is not running here: %w", id, err)
	}
	logPath := filepath.Join(dir, "log.json")
	proc := specs.Process{
		Terminal: spec.Tty, Args: spec.Args, Env: spec.Env, Cwd: spec.Cwd,
		User: specs.User{UID: uint32(spec.UID), GID: uint32(spec.GID)},
	}
	for _, g := range spec.AdditionalGids {
		proc.User.AdditionalGids = append(proc.User.AdditionalGids, uint32(g))
	}
	if spec.Tty {
		proc.ConsoleSize = &specs.Box{Height: uint(spec.Height), Width: uint(spec.Width)}
	}
	b, _ := json.Marshal(proc)
	procPath := filepath.Join(dir, "process.json")
	if err := os.WriteFile(procPath, b, 0o600); err != nil {
		_ = os.RemoveAll(dir) // best effort on an error path: a few bytes in the runtime's state root
		return nil, err
	}
	pidFile := filepath.Join(dir, "pid")
	args := []string{"exec", "--process", procPath, "--pid-file", pidFile}
	e := &ExecProcess{}
	cmd := ociCommand(spec.Runtime, root, logPath, append(args, id)...)
	var childEnds []*os.File
	if spec.Tty {
		// runc takes a console socket only when it detaches, and then the
		// process would not be waitable here. So the runtime makes the
		// console itself and copies it to and from its stdio, which is a
		// pty of ours: when that is resized, the kernel tells the runtime
		// (SIGWINCH) and it resizes the container's console to match.
		master, slave, err := openPty(spec.Width, spec.Height)
		if err != nil {
			_ = os.RemoveAll(dir) // as above
			return nil, err
		}
		cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
		childEnds = []*os.File{slave}
		e.useConsole(master, spec)
	} else {
		in, out, errw, err := e.plumb(spec)
		if err != nil {
			_ = os.RemoveAll(dir) // as above
			return nil, err
		}
		if in != nil {
			cmd.Stdin = in
		}
		cmd.Stdout, cmd.Stderr = out, errw
		childEnds = []*os.File{in, out, errw}
	}
	if err := cmd.Start(); err != nil {
		closeAll(childEnds)
		if e.console != nil {
			e.console.Close()
		}
		_ = os.RemoveAll(dir) // as above
		return nil, err
	}
	closeAll(childEnds)
	exited := make(chan int, 1)
	go func() {
		// Its error is the exit status (its stdio are files, nothing is
		// copied), which ProcessState gives.
		_ = cmd.Wait()
		exited <- cmd.ProcessState.ExitCode()
	}()
	e.wait = func() int {
		// The exec's spec and pid file: a directory left behind is a few
		// bytes that nothing reads, and Wait has only the code to return.
		defer func() { _ = os.RemoveAll(dir) }()
		return <-exited
	}
	// The pid file appears once the process runs; a runtime that exits
	// first could not start it.
	for {
		if b, err := os.ReadFile(pidFile); err == nil && len(bytes.TrimSpace(b)) > 0 {
			e.Pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
			return e, nil
		}
		select {
		case code := <-exited:
			if msg := lastLoggedError(logPath); msg != "" {
				if e.console != nil {
					e.console.Close()
				}
				_ = os.RemoveAll(dir) // as above
				return nil, errors.New(msg)
			}
			exited <- code // it ran, and ended already
			return e, nil
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// openPty opens a new pseudo-terminal of the given size: its master and
// its slave.
func openPty(width, height uint16) (master, slave *os.File, err error) {
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		return nil, nil, err
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		m.Close()
		return nil, nil, err
	}
	sl, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		m.Close()
		return nil, nil, err
	}
	if width > 0 && height > 0 {
		if err := unix.IoctlSetWinsize(int(m.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: height, Col: width}); err != nil {
			m.Close()
			sl.Close()
			return nil, nil, fmt.Errorf("sizing the terminal: %w", err)
		}
	}
	return m, sl, nil
}

// configRlimits is the spec's process rlimits in libcontainer's form.
func configRlimits(spec *specs.Spec) ([]configs.Rlimit, error) {
	if spec.Process == nil {
		return nil, nil
	}
	var out []configs.Rlimit
	for _, r := range spec.Process.Rlimits {
		res, ok := rlimitNames[strings.ToLower(strings.TrimPrefix(r.Type, "RLIMIT_"))]
		if !ok {
			return nil, fmt.Errorf("container config: unknown rlimit %s", r.Type)
		}
		out = append(out, configs.Rlimit{Type: res, Soft: r.Soft, Hard: r.Hard})
	}
	return out, nil
}

// removeIfAny removes the file at path; one that is not there is as good.
func removeIfAny(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// killGone is the error of a signal sent to tear a process down: nil when
// the process was already gone (ESRCH, os.ErrProcessDone), which is what
// the sender wanted.
func killGone(err error) error {
	if errors.Is(err, unix.ESRCH) || errors.Is(err, os.ErrProcessDone) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("killing it: %w", err)
	}
	return nil
}
