package shim

import (
	"encoding/binary"
	"io"
	"net"
	"path/filepath"
	"time"
)

// MonitorConfig is what the daemon hands a container's monitor, as
// monitor.json in the container's directory.
type MonitorConfig struct {
	ID        string `json:"id"`
	StateRoot string `json:"stateRoot"` // libcontainer's state root
	// Runtime is an OCI runtime binary to run the container with instead
	// of the embedded libcontainer; "" for the embedded one.
	Runtime string `json:"runtime,omitempty"`
	Bundle  string `json:"bundle"`  // holds config.json, the OCI spec
	LogPath string `json:"logPath"` // json-file log
	// LogMaxSize rotates the log when it would grow past it (0: never);
	// LogMaxFiles is how many files rotation keeps, the live one included.
	LogMaxSize int64 `json:"logMaxSize,omitempty"`
	// LogFormat is the log driver's file format: "" for json-file,
	// LogLocal for Docker's local driver, LogNone for no log at all.
	LogFormat   string `json:"logFormat,omitempty"`
	LogMaxFiles int    `json:"logMaxFiles,omitempty"`
	ExitPath    string `json:"exitPath"` // where the exit status is recorded
	SockDir     string `json:"sockDir"`  // attach.sock and ctl.sock
	Tty         bool   `json:"tty"`
	OpenStdin   bool   `json:"openStdin"`
	StdinOnce   bool   `json:"stdinOnce"`
	Width       uint16 `json:"width,omitempty"`
	Height      uint16 `json:"height,omitempty"`
	// Cgroup is the container's own cgroup v2 directory ("" without
	// delegation): the container's init is created in it, so every process
	// of the container is too. MonitorCgroup is where the monitor itself
	// waits, outside it, so that freezing or killing the container's cgroup
	// leaves the monitor alone.
	Cgroup        string `json:"cgroup,omitempty"`
	MonitorCgroup string `json:"monitorCgroup,omitempty"`
	// Adopt, when set, makes the monitor take over this running init
	// (its first monitor died) instead of creating a container; its
	// output comes as files 4 on, named by AdoptStreams (AdoptMonitor).
	Adopt        *InitProc `json:"adopt,omitempty"`
	AdoptStreams []string  `json:"adoptStreams,omitempty"`
}

// ExitStatus is how a container ended, as its monitor recorded it.
type ExitStatus struct {
	ExitCode   int       `json:"exitCode"`
	OOMKilled  bool      `json:"oomKilled,omitempty"`
	FinishedAt time.Time `json:"finishedAt"`
	Error      string    `json:"error,omitempty"`
}

// AttachSocket and CtlSocket are the monitor's sockets in sockDir.
func AttachSocket(sockDir string) string { return filepath.Join(sockDir, "attach.sock") }

// CtlSocket takes control requests, one JSON object a line.
func CtlSocket(sockDir string) string { return filepath.Join(sockDir, "ctl.sock") }

// AttachRequest opens an attach connection: one JSON line, then stdin bytes
// flow in and framed output flows out.
type AttachRequest struct {
	Stdin  bool `json:"stdin"`
	Stdout bool `json:"stdout"`
	Stderr bool `json:"stderr"`
}

// CtlRequest is one control request.
type CtlRequest struct {
	// Op is go, resize, signal, wait, state, fds or reopenlog (close the
	// log's file and open the one at its path: the kubelet renamed it).
	Op     string `json:"op"`
	Width  uint16 `json:"w,omitempty"`
	Height uint16 `json:"h,omitempty"`
	Signal int    `json:"sig,omitempty"`
}

// CtlReply answers it.
type CtlReply struct {
	Error   string      `json:"error,omitempty"`
	Pid     int         `json:"pid,omitempty"`
	Running bool        `json:"running,omitempty"`
	Exit    *ExitStatus `json:"exit,omitempty"`
	// Streams names the files an fds reply carries.
	Streams []string `json:"streams,omitempty"`
}

// Output streams, numbered as Docker frames them.
const (
	StreamStdin  = 0
	StreamStdout = 1
	StreamStderr = 2
)

// WriteFrame writes one frame in Docker's multiplexed-stream format: stream
// byte, three zero bytes, big-endian length, payload. A frame is one
// Write (one writev on a connection), so frames written concurrently to
// the same connection (an exec's stdout and stderr) never interleave.
func WriteFrame(w io.Writer, stream byte, p []byte) error {
	var hdr [8]byte
	hdr[0] = stream
	binary.BigEndian.PutUint32(hdr[4:], uint32(len(p)))
	if _, ok := w.(net.Conn); ok {
		bufs := net.Buffers{hdr[:], p}
		_, err := bufs.WriteTo(w)
		return err
	}
	_, err := w.Write(append(hdr[:], p...))
	return err
}

// FrameWriter writes everything it is given as frames of one stream.
type FrameWriter struct {
	W      io.Writer
	Stream byte
}

func (f FrameWriter) Write(p []byte) (int, error) {
	if err := WriteFrame(f.W, f.Stream, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// ReadFrame reads one frame written by WriteFrame.
func ReadFrame(r io.Reader, buf []byte) (stream byte, payload []byte, err error) {
	var hdr [8]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := int(binary.BigEndian.Uint32(hdr[4:]))
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		return 0, nil, err
	}
	return hdr[0], buf, nil
}
