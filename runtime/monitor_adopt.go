package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/lodge-containers/lodge/cgroupv2"
)

// A monitor can die (kill -9, the OOM killer) while its container runs
// on. The daemon then starts another one for the container, which adopts
// it: the container's output pipes (or tty master) come to it from the
// daemon, which has held duplicates of them since the container started,
// so the pipes never lose their last reader (no SIGPIPE; what is in the
// pipe waits for the new monitor; only what the dead one had read and not
// yet logged, one read at most, is lost with it). The adopting
// monitor logs and serves attach and control as the first did; only the
// container's stdin and its exit code are gone with the first monitor (its
// parent: the init's status goes to whoever reaps it now). It waits for
// the init through a pidfd and reports 128+the signal it last sent, or 255
// with the reason.

// OutputFiles asks a running monitor for duplicates of its container's
// output: the read ends of stdout and stderr, or the tty master, with
// their stream names ("stdout", "stderr"). The caller owns the files and
// closes them; holding them keeps the container's output open for a
// monitor that adopts it.
func OutputFiles(sockDir string) ([]*os.File, []string, error) {
	conn, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: CtlSocket(sockDir), Net: "unix"})
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrMonitorGone, err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if err := json.NewEncoder(conn).Encode(ctlRequest{Op: "fds"}); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrMonitorGone, err)
	}
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4*4))
	n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrMonitorGone, err)
	}
	var fds []int
	if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
		for i := range msgs {
			if f, err := unix.ParseUnixRights(&msgs[i]); err == nil {
				fds = append(fds, f...)
			}
		}
	}
	files := make([]*os.File, len(fds))
	for i, fd := range fds {
		unix.CloseOnExec(fd)
		files[i] = os.NewFile(uintptr(fd), "container-output")
	}
	var rep ctlReply
	if err := json.Unmarshal(buf[:n], &rep); err != nil || rep.Error != "" || len(rep.Streams) != len(files) {
		for _, f := range files {
			f.Close()
		}
		if rep.Error != "" {
			return nil, nil, errors.New(rep.Error)
		}
		return nil, nil, fmt.Errorf("monitor sent %d files for streams %v (%v)", len(files), rep.Streams, err)
	}
	return files, rep.Streams, nil
}

// sendOutputs answers an "fds" request: one message with the reply and
// the output files.
func (m *monitor) sendOutputs(c net.Conn) error {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return errors.New("not a unix connection")
	}
	fds := make([]int, len(m.outputFiles))
	for i, f := range m.outputFiles {
		fds[i] = int(f.Fd())
	}
	b, _ := json.Marshal(ctlReply{Streams: m.streams})
	_, _, err := uc.WriteMsgUnix(append(b, '\n'), unix.UnixRights(fds...), nil)
	return err
}

// AdoptMonitor starts a monitor for a running container whose first
// monitor died: cfgPath is a MonitorConfig with Adopt set, outputs the
// files OutputFiles gave (they are passed on, not closed). It returns once
// the monitor listens.
func AdoptMonitor(ctx context.Context, cfgPath, logPath string, outputs []*os.File) error {
	_, err := startMonitor(ctx, cfgPath, logPath, outputs)
	return err
}

// adopt takes over a running container: its output from the files after
// the status pipe (fd 4 on), its init through its pid and start time.
func (m *monitor) adopt() error {
	a := m.cfg.Adopt
	if !a.Alive() {
		return ErrInitGone
	}
	if m.cfg.MonitorCgroup != "" {
		// Where the first monitor waited, out of the container's cgroup.
		cgroupv2.Join(m.cfg.MonitorCgroup, os.Getpid())
	}
	if err := os.Chdir(m.cfg.Bundle); err != nil {
		return err
	}
	m.rt = &adoptBackend{init: *a, cfg: m.cfg}
	var err error
	if m.log, err = openJSONLog(m.cfg.LogPath, m.cfg.LogMaxSize, m.cfg.LogMaxFiles); err != nil {
		return err
	}
	if m.ctlL, err = listenUnix(CtlSocket(m.cfg.SockDir)); err != nil {
		return err
	}
	if m.attachL, err = listenUnix(AttachSocket(m.cfg.SockDir)); err != nil {
		return err
	}
	m.streams = m.cfg.AdoptStreams
	for i := range m.streams {
		unix.CloseOnExec(4 + i) // not for a runtime binary this runs
		f := os.NewFile(uintptr(4+i), m.streams[i])
		if f == nil {
			return fmt.Errorf("adopting: no file for %s", m.streams[i])
		}
		m.outputFiles = append(m.outputFiles, f)
		m.outputs = append(m.outputs, io.Reader(f))
	}
	if m.cfg.Tty && len(m.outputFiles) == 1 {
		m.console = m.outputFiles[0]
		if m.cfg.OpenStdin { // a tty's master takes input too
			m.stdin = nopCloser{m.console}
		}
	}
	m.pid = a.Pid
	m.goOnce.Do(func() { close(m.goCh) }) // it runs already
	return nil
}

// adoptBackend is the runtime of an adopted container: its init is not
// this process's child, so it is reached through its pid and start time.
type adoptBackend struct {
	init InitProc
	cfg  MonitorConfig
	mu   sync.Mutex
	sig  syscall.Signal // the last signal sent
}

func (b *adoptBackend) create(*specs.Spec, procIO) (int, *os.File, error) {
	return 0, nil, errors.New("an adopted container is not created")
}

func (b *adoptBackend) start() error { return nil }

func (b *adoptBackend) wait() int {
	b.init.Wait(context.Background())
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.sig != 0 {
		return 128 + int(b.sig)
	}
	return exitUnknown
}

// unknown reports whether the exit code wait gave is a guess of nothing.
func (b *adoptBackend) unknown() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sig == 0
}

func (b *adoptBackend) signal(sig syscall.Signal) error {
	b.mu.Lock()
	b.sig = sig
	b.mu.Unlock()
	return b.init.Signal(sig)
}

func (b *adoptBackend) destroy() { Forget(b.cfg.StateRoot, b.cfg.ID, b.cfg.Runtime) }

// exitUnknown is the exit code of a container whose exit status nobody
// could see; ErrExitUnknown says why.
const exitUnknown = 255

// ExitUnknownReason is the error recorded with it.
const ExitUnknownReason = "the container's monitor died before the container ended: its exit status is unknown"

// ReopenOutputs opens new read ends of a running container's stdout and
// stderr pipes through its init's /proc/PID/fd, for a monitor to adopt it
// when nobody held copies (its monitor died while no lodged ran): what was
// written while the pipes had no reader is lost, what comes after is not.
// It fails for a tty (the init holds the slave; the master is gone) and
// when the init's stdout or stderr is not a pipe any more.
func ReopenOutputs(init InitProc) ([]*os.File, []string, error) {
	streams := []string{"stdout", "stderr"}
	var files []*os.File
	fail := func(err error) ([]*os.File, []string, error) {
		for _, f := range files {
			f.Close()
		}
		return nil, nil, err
	}
	for i := range streams {
		// Non-blocking: a pipe without a writer left would block the open.
		f, err := os.OpenFile(fmt.Sprintf("/proc/%d/fd/%d", init.Pid, i+1), os.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err != nil {
			return fail(err)
		}
		files = append(files, f)
		var st unix.Stat_t
		if err := unix.Fstat(int(f.Fd()), &st); err != nil {
			return fail(err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFIFO {
			return fail(fmt.Errorf("the init's %s is not a pipe", streams[i]))
		}
		if err := unix.SetNonblock(int(f.Fd()), false); err != nil {
			return fail(err)
		}
	}
	// Opened through the pid: it must still be the init.
	if !init.Alive() {
		return fail(ErrInitGone)
	}
	return files, streams, nil
}
