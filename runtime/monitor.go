package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/lodge-containers/lodge/paths"
	"github.com/lodge-containers/lodge/shim"
)

// startReply is what the monitor tells the daemon on its status pipe once
// the container is created (or could not be).
type startReply struct {
	Pid   int    `json:"pid,omitempty"`
	Error string `json:"error,omitempty"`
}

// RunMonitor is the monitor process's main: it creates the container
// described by cfgPath (or adopts it), reports the result on status (the
// daemon's pipe), then hands the running container to the shim's loop
// (shim.Run), which waits for the daemon's "go", runs it to its end and
// records how it ended. With libcontainer, the loop runs in lodge-shim,
// which this process becomes (execve: same pid, still the init's parent),
// so that what lives as long as the container links no libcontainer.
// It returns when the container has exited and its output is logged.
func RunMonitor(cfgPath string, status *os.File) error {
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		return err
	}
	var cfg shim.MonitorConfig
	if err := json.Unmarshal(b, &cfg); err != nil {
		return err
	}
	m := &monitor{cfg: cfg}
	if cfg.Adopt != nil {
		err = m.adopt()
	} else {
		err = m.create()
	}
	reply := startReply{}
	if err != nil {
		reply.Error = err.Error()
	} else {
		reply.Pid = m.pid
	}
	if eerr := json.NewEncoder(status).Encode(reply); eerr != nil {
		// lodged stopped listening: it gave up (and kills this monitor)
		// or died. Nothing here to undo: the monitor goes on as it did
		// before, and its log says so.
		fmt.Fprintln(os.Stderr, "lodge-monitor: telling lodged the container's start:", eerr)
	}
	status.Close()
	if err != nil {
		return err
	}
	if cfg.Runtime == "" {
		if exe, err := paths.Helper(shim.BinaryName); err == nil {
			err = m.execShim(exe, cfgPath)
			fmt.Fprintf(os.Stderr, "lodge-monitor: running %s: %v; monitoring in this process\n", exe, err)
		}
	}
	return shim.Run(cfg, m.shimRuntime(), m.pid, m.files(), cfg.Adopt != nil)
}

// monitor is the monitor until the container is created (or adopted):
// the files it then hands to the shim's loop.
type monitor struct {
	cfg     shim.MonitorConfig
	rt      backend
	pid     int
	stdin   *os.File   // the stdin pipe's write end, nil without one
	console *os.File   // pty master with Tty
	outputs []*os.File // read ends of stdout and stderr, or the master
	streams []string
	ctlL    *net.UnixListener
	attachL *net.UnixListener
}

func (m *monitor) listen() error {
	if err := os.MkdirAll(m.cfg.SockDir, 0o700); err != nil {
		return err
	}
	var err error
	if m.ctlL, err = shim.ListenUnix(shim.CtlSocket(m.cfg.SockDir)); err != nil {
		return err
	}
	m.attachL, err = shim.ListenUnix(shim.AttachSocket(m.cfg.SockDir))
	return err
}

func (m *monitor) create() error {
	var spec specs.Spec
	b, err := os.ReadFile(filepath.Join(m.cfg.Bundle, "config.json"))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, &spec); err != nil {
		return err
	}
	if err := os.Chdir(m.cfg.Bundle); err != nil {
		return err
	}
	m.rt = newBackend(m.cfg)
	// The log is the shim's to write; a log that cannot be opened fails
	// the start here, before the container exists.
	if err := shim.CheckLog(m.cfg); err != nil {
		return err
	}
	if err := m.listen(); err != nil {
		return err
	}
	pio := procIO{tty: m.cfg.Tty, width: m.cfg.Width, height: m.cfg.Height}
	var childEnds []*os.File
	if !m.cfg.Tty {
		outR, outW, err := os.Pipe()
		if err != nil {
			return err
		}
		errR, errW, err := os.Pipe()
		if err != nil {
			return err
		}
		pio.stdout, pio.stderr = outW, errW
		m.outputs = []*os.File{outR, errR}
		m.streams = []string{"stdout", "stderr"}
		childEnds = append(childEnds, outW, errW)
		if m.cfg.OpenStdin {
			inR, inW, err := os.Pipe()
			if err != nil {
				return err
			}
			pio.stdin = inR
			m.stdin = inW
			childEnds = append(childEnds, inR)
		}
	}
	pid, console, err := m.createInCgroup(&spec, pio)
	for _, f := range childEnds {
		f.Close()
	}
	if err != nil {
		return err
	}
	if console != nil {
		m.console = console
		m.outputs = []*os.File{console}
		m.streams = []string{"stdout"}
	}
	m.pid = pid
	return nil
}

// files are the container's files as the shim's loop takes them in this
// process.
func (m *monitor) files() shim.Files {
	f := shim.Files{Ctl: m.ctlL, Attach: m.attachL, Outputs: m.outputs, Streams: m.streams, Console: m.console}
	switch {
	case m.stdin != nil:
		f.Stdin = m.stdin
	case m.console != nil && m.cfg.OpenStdin: // a tty's master takes input too
		f.Stdin = shim.NopCloser{Writer: m.console}
	}
	return f
}

// shimRuntime is the runtime the shim's loop drives in this process.
func (m *monitor) shimRuntime() shim.Runtime {
	switch {
	case m.cfg.Adopt != nil:
		cfg := m.cfg
		return &shim.AdoptRuntime{Init: *cfg.Adopt, Forget: func() {
			if err := forget(cfg.StateRoot, cfg.ID, cfg.Runtime); err != nil {
				fmt.Fprintln(os.Stderr, "lodge-monitor: removing the container's runtime state:", err)
			}
		}}
	case m.cfg.Runtime != "":
		return m.rt.(*ociBackend)
	}
	return &shim.ChildRuntime{Pid: m.pid, StateDir: shim.StateDir(m.cfg)}
}

// execShim becomes lodge-shim, handing it the container's descriptors:
// it returns only when the execve failed (the descriptors it made for
// the shim are closed again).
func (m *monitor) execShim(exe, cfgPath string) error {
	h := shim.Handoff{Config: m.cfg, Pid: m.pid, Adopted: m.cfg.Adopt != nil, Stdin: -1}
	var fds []int
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	inherit := func(c syscall.Conn) (int, error) {
		fd, err := dupInheritable(c)
		if err == nil {
			fds = append(fds, fd)
		}
		return fd, err
	}
	var err error
	if h.Ctl, err = inherit(m.ctlL); err != nil {
		return err
	}
	if h.Attach, err = inherit(m.attachL); err != nil {
		return err
	}
	for _, f := range m.outputs {
		fd, err := inherit(f)
		if err != nil {
			return err
		}
		h.Outputs = append(h.Outputs, fd)
	}
	h.Streams = m.streams
	if m.stdin != nil {
		if h.Stdin, err = inherit(m.stdin); err != nil {
			return err
		}
	}
	return h.Exec(exe, []string{exe, cfgPath})
}

// dupInheritable duplicates c's descriptor without close-on-exec, leaving
// c as it is (Fd would make a pollable file blocking).
func dupInheritable(c syscall.Conn) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return -1, err
	}
	nfd, derr := -1, error(nil)
	if err := rc.Control(func(fd uintptr) { nfd, derr = unix.Dup(int(fd)) }); err != nil {
		return -1, err
	}
	if derr != nil {
		return -1, errors.Join(errors.New("duplicating a descriptor for lodge-shim"), derr)
	}
	return nfd, nil
}

// recvFd receives one descriptor sent on sock.
func recvFd(sock *os.File) (*os.File, error) {
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := unix.Recvmsg(int(sock.Fd()), buf, oob, 0)
	if err != nil {
		return nil, err
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return nil, err
	}
	if len(msgs) != 1 {
		return nil, errors.New("no file descriptor received")
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return nil, errors.New("no file descriptor received")
	}
	return os.NewFile(uintptr(fds[0]), string(buf[:n])), nil
}
