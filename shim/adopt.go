package shim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ErrMonitorGone means the monitor does not answer: the container has ended
// (its exit status is on disk) or its monitor was killed.
var ErrMonitorGone = errors.New("container monitor is gone")

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
	defer func() { _ = conn.Close() }() // only read from after the request
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrMonitorGone, err)
	}
	if err := json.NewEncoder(conn).Encode(CtlRequest{Op: "fds"}); err != nil {
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
	var rep CtlReply
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
	fds := make([]int, 0, len(m.Outputs))
	for _, f := range m.Outputs {
		rc, err := f.SyscallConn()
		if err != nil {
			return err
		}
		if err := rc.Control(func(fd uintptr) { fds = append(fds, int(fd)) }); err != nil {
			return err
		}
	}
	b, _ := json.Marshal(CtlReply{Streams: m.Streams})
	_, _, err := uc.WriteMsgUnix(append(b, '\n'), unix.UnixRights(fds...), nil)
	return err
}

// AdoptRuntime is the runtime of an adopted container: its init is not
// the monitor's child, so it is reached through its pid and start time.
type AdoptRuntime struct {
	Init InitProc
	// Forget removes the runtime's state of the container once it ends.
	Forget func()
	mu     sync.Mutex
	sig    syscall.Signal // the last signal sent
}

// Start does nothing: an adopted container runs already.
func (b *AdoptRuntime) Start() error { return nil }

// Wait waits for the init's end; its status went to its parent, so the
// code is 128+the last signal sent, or exitUnknown.
func (b *AdoptRuntime) Wait() int {
	// Wait fails only when the pidfd cannot be had or polled: then the
	// init's /proc entry is looked at every second instead.
	if err := b.Init.Wait(context.Background()); err != nil {
		warn("waiting for the adopted init:", err)
		for {
			if st, err := StartTime(b.Init.Pid); err != nil || st != b.Init.StartTime {
				break
			}
			time.Sleep(time.Second)
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.sig != 0 {
		return 128 + int(b.sig)
	}
	return exitUnknown
}

// unknown reports whether the exit code Wait gave is a guess of nothing.
func (b *AdoptRuntime) unknown() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sig == 0
}

// Signal sends sig to the init, and remembers it.
func (b *AdoptRuntime) Signal(sig syscall.Signal) error {
	b.mu.Lock()
	b.sig = sig
	b.mu.Unlock()
	return b.Init.Signal(sig)
}

// Destroy forgets the container.
func (b *AdoptRuntime) Destroy() {
	if b.Forget != nil {
		b.Forget()
	}
}

// exitUnknown is the exit code of a container whose exit status nobody
// could see; ExitUnknownReason says why.
const exitUnknown = 255

// ExitUnknownReason is the error recorded with it.
const ExitUnknownReason = "the container's monitor died before the container ended: its exit status is unknown"
