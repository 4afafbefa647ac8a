package shim

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lodge-containers/lodge/internal/atomicfile"
)

// Runtime is what the loop needs of the runtime a container runs on.
type Runtime interface {
	// Start lets the created container's program run.
	Start() error
	// Wait blocks until the init ends and gives its exit code (128+signal
	// when a signal ended it).
	Wait() int
	Signal(sig syscall.Signal) error
	// Destroy removes what the runtime keeps of the container.
	Destroy()
}

// Files are a running container's open files, held by its monitor.
type Files struct {
	Ctl, Attach net.Listener
	// Outputs are the read ends of stdout and stderr, or the tty master,
	// named by Streams.
	Outputs []*os.File
	Streams []string
	Stdin   io.WriteCloser // nil without OpenStdin
	Console *os.File       // the tty master, nil without Tty
}

type monitor struct {
	cfg MonitorConfig
	rt  Runtime
	pid int
	log *jsonLog
	Files

	stdinMu  sync.Mutex
	goCh     chan struct{}
	goOnce   sync.Once
	done     chan struct{}
	exit     ExitStatus
	attachMu sync.Mutex
	attached map[*attachConn]bool
}

type attachConn struct {
	c              net.Conn
	stdout, stderr bool
}

// Run is the monitor's life after the container is created: it serves the
// sockets, lets the container go when the daemon says so (at once when
// started is set: an adopted container runs already), logs its output
// until it ends, records how it ended and tears it down. It returns once
// the exit is recorded.
func Run(cfg MonitorConfig, rt Runtime, pid int, f Files, started bool) error {
	lg, err := openLog(cfg)
	if err != nil {
		return err
	}
	m := &monitor{cfg: cfg, rt: rt, pid: pid, log: lg, Files: f,
		goCh: make(chan struct{}), done: make(chan struct{}), attached: map[*attachConn]bool{}}
	if started {
		m.goOnce.Do(func() { close(m.goCh) })
	}
	return m.run()
}

func (m *monitor) run() error {
	go serve(m.Ctl, m.ctl)
	go serve(m.Attach, m.attach)
	// The daemon says go once its attach connections are in place, so that
	// a `docker run` sees the first byte of output. A daemon that died
	// before saying it must not leave the container stuck.
	t := time.NewTimer(60 * time.Second)
	select {
	case <-m.goCh:
	case <-t.C:
	}
	t.Stop()
	if err := m.rt.Start(); err != nil {
		m.finish(ExitStatus{ExitCode: 127, Error: err.Error(), FinishedAt: time.Now().UTC()})
		return err
	}
	var wg sync.WaitGroup
	for i, r := range m.Outputs {
		wg.Add(1)
		go func(r io.Reader, stream string, n byte) {
			defer wg.Done()
			m.pump(r, stream, n)
		}(r, m.Streams[i], byte(i+1))
	}
	code := m.rt.Wait()
	// With a tty, the master reads EIO once the last slave is closed, but a
	// daemonised grandchild can keep it open: do not wait forever.
	WaitTimeout(&wg, 2*time.Second)
	st := ExitStatus{ExitCode: code, FinishedAt: time.Now().UTC()}
	if ab, ok := m.rt.(*AdoptRuntime); ok && ab.unknown() {
		st.Error = ExitUnknownReason
	}
	m.finish(st)
	return nil
}

// WaitTimeout waits for wg, or d at most.
func WaitTimeout(wg *sync.WaitGroup, d time.Duration) {
	c := make(chan struct{})
	go func() { wg.Wait(); close(c) }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c:
	case <-t.C:
	}
}

// finish records the exit, releases waiters and attachers, and tears the
// container down.
func (m *monitor) finish(st ExitStatus) {
	if err := m.log.close(); err != nil {
		warn("log:", err)
	}
	EndCgroup(m.cfg.Cgroup, &st)
	// The container's state goes before anyone hears of the exit: a
	// restart reuses the ID at once.
	m.rt.Destroy()
	m.exit = st
	b, _ := json.Marshal(st)
	// Renamed into place, not synced: it matters only until lodged reads it.
	if err := atomicfile.Replace(m.cfg.ExitPath, b, 0o600); err != nil {
		// Waiters connected now still hear the status; lodged, reading
		// the file later, records the exit as unknown.
		warn("recording the exit:", err)
	}
	close(m.done)
	m.attachMu.Lock()
	for a := range m.attached {
		a.c.Close()
	}
	m.attachMu.Unlock()
	// Let waiters collect the status before the sockets go.
	time.Sleep(100 * time.Millisecond)
	m.Ctl.Close()
	m.Attach.Close()
}

// pumpBuffer is one read of a container's output. Smaller than a pipe's
// 64 KiB: a busy container costs a few more reads, an idle one's monitor
// keeps less memory after a burst.
const pumpBuffer = 16 * 1024

// pump copies one output stream to the log and to every attached client.
func (m *monitor) pump(r io.Reader, stream string, n byte) {
	buf := make([]byte, pumpBuffer)
	for {
		k, err := r.Read(buf)
		if k > 0 {
			m.log.write(stream, buf[:k])
			m.attachMu.Lock()
			for a := range m.attached {
				if (n == StreamStdout && a.stdout) || (n == StreamStderr && a.stderr) {
					if a.c.SetWriteDeadline(time.Now().Add(30*time.Second)) != nil || WriteFrame(a.c, n, buf[:k]) != nil {
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
	br := bufio.NewReaderSize(c, 4096)
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
	// An empty frame says the connection is registered: output from now on
	// reaches it, so the daemon may let the container go.
	if err := WriteFrame(c, StreamStdin, nil); err != nil {
		m.attachMu.Unlock()
		c.Close()
		return
	}
	m.attached[a] = true
	m.attachMu.Unlock()
	if !req.Stdin || m.Stdin == nil {
		return
	}
	buf := make([]byte, pumpBuffer)
	for {
		n, err := br.Read(buf)
		if n > 0 {
			m.stdinMu.Lock()
			_, werr := m.Stdin.Write(buf[:n])
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
			if m.cfg.StdinOnce && m.Console == nil {
				m.stdinMu.Lock()
				_ = m.Stdin.Close() // the container's stdin ends either way
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
		var req CtlRequest
		if err := dec.Decode(&req); err != nil {
			return
		}
		var rep CtlReply
		switch req.Op {
		case "go":
			m.goOnce.Do(func() { close(m.goCh) })
		case "fds":
			// One message with the files, read by OutputFiles alone.
			if err := m.sendOutputs(c); err != nil {
				warn("handing out the output files:", err)
			}
			return
		case "resize":
			if m.Console == nil {
				rep.Error = "not a tty"
			} else if err := resize(m.Console, req.Width, req.Height); err != nil {
				rep.Error = err.Error()
			}
		case "signal":
			select {
			case <-m.done:
				rep.Error = "container is not running"
			default:
				if err := m.rt.Signal(syscall.Signal(req.Signal)); err != nil {
					rep.Error = err.Error()
				}
			}
		case "reopenlog":
			select {
			case <-m.done:
				rep.Error = "container is not running"
			default:
				if err := m.log.reopen(); err != nil {
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

// ListenUnix listens on a monitor's socket, reachable by its owner only.
func ListenUnix(path string) (*net.UnixListener, error) {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
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

// resize sets a tty's size through its raw descriptor: Fd would make the
// file blocking, and its reader would then hold a thread.
func resize(f *os.File, width, height uint16) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ierr error
	err = rc.Control(func(fd uintptr) {
		ierr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Row: height, Col: width})
	})
	if err != nil {
		return err
	}
	return ierr
}
