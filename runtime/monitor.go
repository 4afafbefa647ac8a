package runtime

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/lodge-containers/lodge/internal/atomicfile"
)

// RunMonitor is the monitor process's main: it creates the container
// described by cfgPath, reports the result on status (the daemon's pipe),
// waits for the daemon's "go", runs it to its end, and records how it
// ended. It returns when the container has exited and its output is
// logged.
func RunMonitor(cfgPath string, status *os.File) error {
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		return err
	}
	var cfg MonitorConfig
	if err := json.Unmarshal(b, &cfg); err != nil {
		return err
	}
	m := &monitor{cfg: cfg, goCh: make(chan struct{}), done: make(chan struct{})}
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
	json.NewEncoder(status).Encode(reply)
	status.Close()
	if err != nil {
		return err
	}
	return m.run()
}

type monitor struct {
	cfg MonitorConfig
	rt  backend
	pid int
	log *jsonLog

	stdin   io.WriteCloser // nil without OpenStdin
	stdinMu sync.Mutex
	console *os.File // pty master with Tty
	outputs []io.Reader
	// outputFiles are the outputs' files, which the daemon holds copies
	// of for a monitor that adopts the container if this one dies.
	outputFiles []*os.File
	streams     []string
	ctlL        net.Listener
	attachL     net.Listener
	goCh        chan struct{}
	goOnce      sync.Once
	done        chan struct{}
	exit        ExitStatus
	attachMu    sync.Mutex
	attached    map[*attachConn]bool
}

type attachConn struct {
	c              net.Conn
	stdout, stderr bool
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
	if m.log, err = openLog(m.cfg); err != nil {
		return err
	}
	if err := os.MkdirAll(m.cfg.SockDir, 0o700); err != nil {
		return err
	}
	if m.ctlL, err = listenUnix(CtlSocket(m.cfg.SockDir)); err != nil {
		return err
	}
	if m.attachL, err = listenUnix(AttachSocket(m.cfg.SockDir)); err != nil {
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
		m.outputs = []io.Reader{outR, errR}
		m.outputFiles = []*os.File{outR, errR}
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
		m.outputs = []io.Reader{console}
		m.outputFiles = []*os.File{console}
		m.streams = []string{"stdout"}
		if m.cfg.OpenStdin {
			m.stdin = nopCloser{console}
		}
	}
	m.pid = pid
	return nil
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

func (m *monitor) run() error {
	m.attached = map[*attachConn]bool{}
	go serve(m.ctlL, m.ctl)
	go serve(m.attachL, m.attach)
	// The daemon says go once its attach connections are in place, so that
	// a `docker run` sees the first byte of output. A daemon that died
	// before saying it must not leave the container stuck.
	select {
	case <-m.goCh:
	case <-time.After(60 * time.Second):
	}
	if err := m.rt.start(); err != nil {
		m.finish(ExitStatus{ExitCode: 127, Error: err.Error(), FinishedAt: time.Now().UTC()})
		return err
	}
	var wg sync.WaitGroup
	for i, r := range m.outputs {
		wg.Add(1)
		go func(r io.Reader, stream string, n byte) {
			defer wg.Done()
			m.pump(r, stream, n)
		}(r, m.streams[i], byte(i+1))
	}
	code := m.rt.wait()
	// With a tty, the master reads EIO once the last slave is closed, but a
	// daemonised grandchild can keep it open: do not wait forever.
	waitTimeout(&wg, 2*time.Second)
	st := ExitStatus{ExitCode: code, FinishedAt: time.Now().UTC()}
	if ab, ok := m.rt.(*adoptBackend); ok && ab.unknown() {
		st.Error = ExitUnknownReason
	}
	m.finish(st)
	return nil
}

func waitTimeout(wg *sync.WaitGroup, d time.Duration) {
	c := make(chan struct{})
	go func() { wg.Wait(); close(c) }()
	select {
	case <-c:
	case <-time.After(d):
	}
}

// finish records the exit, releases waiters and attachers, and tears the
// container down.
func (m *monitor) finish(st ExitStatus) {
	m.log.close()
	m.endCgroup(&st)
	// The container's state goes before anyone hears of the exit: a
	// restart reuses the ID at once.
	m.rt.destroy()
	m.exit = st
	b, _ := json.Marshal(st)
	// Renamed into place, not synced: it matters only until lodged reads it.
	atomicfile.Replace(m.cfg.ExitPath, b, 0o600)
	close(m.done)
	m.attachMu.Lock()
	for a := range m.attached {
		a.c.Close()
	}
	m.attachMu.Unlock()
	// Let waiters collect the status before the sockets go.
	time.Sleep(100 * time.Millisecond)
	m.ctlL.Close()
	m.attachL.Close()
}

// pump copies one output stream to the log and to every attached client.
func (m *monitor) pump(r io.Reader, stream string, n byte) {
	buf := make([]byte, 32*1024)
	for {
		k, err := r.Read(buf)
		if k > 0 {
			m.log.write(stream, buf[:k])
			m.attachMu.Lock()
			for a := range m.attached {
				if (n == StreamStdout && a.stdout) || (n == StreamStderr && a.stderr) {
					a.c.SetWriteDeadline(time.Now().Add(30 * time.Second))
					if WriteFrame(a.c, n, buf[:k]) != nil {
						a.c.Close()
						delete(m.attached, a)
					}
				}
			}
			m.attachMu.Unlock()
		}
		if err != nil {
			return
		}
	}
}

// serve handles each connection to l until l is closed.
func serve(l net.Listener, handle func(net.Conn)) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go handle(c)
	}
}

func (m *monitor) attach(c net.Conn) {
	br := bufio.NewReader(c)
	line, err := br.ReadBytes('\n')
	var req AttachRequest
	if err != nil || json.Unmarshal(line, &req) != nil {
		c.Close()
		return
	}
	select {
	case <-m.done:
		c.Close()
		return
	default:
	}
	a := &attachConn{c: c, stdout: req.Stdout, stderr: req.Stderr}
	m.attachMu.Lock()
	m.attached[a] = true
	// An empty frame says the connection is registered: output from now on
	// reaches it, so the daemon may let the container go.
	WriteFrame(c, StreamStdin, nil)
	m.attachMu.Unlock()
	if !req.Stdin || m.stdin == nil {
		return
	}
	buf := make([]byte, 32*1024)
	for {
		n, err := br.Read(buf)
		if n > 0 {
			m.stdinMu.Lock()
			_, werr := m.stdin.Write(buf[:n])
			m.stdinMu.Unlock()
			if werr != nil {
				return
			}
		}
		if err != nil {
			// The client closed its side: stdin ends for a StdinOnce
			// container (docker run -i), as with Docker. With a tty it
			// never does, as with Docker: the client may have detached
			// (ctrl-p ctrl-q) or lost its terminal, and the shell on the
			// tty must go on running for the next attach.
			if m.cfg.StdinOnce && m.console == nil {
				m.stdinMu.Lock()
				m.stdin.Close()
				m.stdinMu.Unlock()
			}
			return
		}
	}
}

func (m *monitor) ctl(c net.Conn) {
	defer c.Close()
	dec := json.NewDecoder(c)
	enc := json.NewEncoder(c)
	for {
		var req ctlRequest
		if err := dec.Decode(&req); err != nil {
			return
		}
		var rep ctlReply
		switch req.Op {
		case "go":
			m.goOnce.Do(func() { close(m.goCh) })
		case "fds":
			// One message with the files, read by OutputFiles alone.
			m.sendOutputs(c)
			return
		case "resize":
			if m.console == nil {
				rep.Error = "not a tty"
			} else if err := unix.IoctlSetWinsize(int(m.console.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: req.Height, Col: req.Width}); err != nil {
				rep.Error = err.Error()
			}
		case "signal":
			select {
			case <-m.done:
				rep.Error = "container is not running"
			default:
				if err := m.rt.signal(syscall.Signal(req.Signal)); err != nil {
					rep.Error = err.Error()
				}
			}
		case "state":
			select {
			case <-m.done:
				st := m.exit
				rep.Exit = &st
			default:
				rep.Pid, rep.Running = m.pid, true
			}
		case "wait":
			<-m.done
			st := m.exit
			rep.Exit = &st
		default:
			rep.Error = "unknown op " + req.Op
		}
		if err := enc.Encode(rep); err != nil {
			return
		}
	}
}

func listenUnix(path string) (net.Listener, error) {
	os.Remove(path)
	old := syscall.Umask(0o177)
	defer syscall.Umask(old)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, err
	}
	// A restarted container's next monitor listens on the same path
	// before this one has closed; closing must not unlink its socket.
	l.SetUnlinkOnClose(false)
	return l, nil
}

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
