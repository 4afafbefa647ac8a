package runtime

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lodge-containers/lodge/errdefs"
	"github.com/lodge-containers/lodge/paths"
	"github.com/lodge-containers/lodge/shim"
)

const envMonitor = "_LODGE_MONITOR"

// IsMonitor reports whether this process was started as a monitor.
func IsMonitor() bool { return os.Getenv(envMonitor) != "" }

// MonitorMain runs the monitor with the arguments StartMonitor gave it.
func MonitorMain() error {
	if len(os.Args) < 2 {
		return errors.New("monitor: no config")
	}
	return RunMonitor(os.Args[1], os.NewFile(3, "status"))
}

// StartMonitor starts a monitor for the container whose shim.MonitorConfig is at
// cfgPath, logging the monitor's own errors to logPath, and waits until the
// container is created (its process waits for Go). It returns the
// container's init pid. A process that cannot be started is an error
// classed as Docker's clients expect: a missing executable or a permission
// problem in the container is errdefs.ErrInvalidArgument with libcontainer's
// message (the API answers 400 and the CLI exits 127/126 from the text).
func StartMonitor(ctx context.Context, cfgPath, logPath string) (int, error) {
	return startMonitor(ctx, cfgPath, logPath, nil)
}

// startMonitor is StartMonitor, passing extra files on as 4 on.
func startMonitor(ctx context.Context, cfgPath, logPath string, extra []*os.File) (int, error) {
	exe, err := MonitorBinary()
	if err != nil {
		return 0, err
	}
	statusR, statusW, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer statusR.Close()
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		statusW.Close()
		return 0, err
	}
	defer logf.Close()
	cmd := exec.Command(exe, cfgPath)
	cmd.Env = append(monitorEnv(), envMonitor+"=1")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = append([]*os.File{statusW}, extra...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		statusW.Close()
		return 0, err
	}
	statusW.Close()
	// Reap it while we are its parent (the keeper does later); how it
	// ended is in its log, where its stderr goes.
	go func() { _ = cmd.Wait() }()
	type result struct {
		r   startReply
		err error
	}
	ch := make(chan result, 1)
	go func() {
		var r startReply
		err := json.NewDecoder(statusR).Decode(&r)
		ch <- result{r, err}
	}()
	select {
	case <-ctx.Done():
		cmd.Process.Kill()
		return 0, ctx.Err()
	case res := <-ch:
		if res.err != nil {
			b, _ := os.ReadFile(logPath)
			return 0, fmt.Errorf("container monitor failed: %s", strings.TrimSpace(lastLines(string(b), 5)))
		}
		if res.r.Error != "" {
			return 0, classifyStartError(res.r.Error)
		}
		return res.r.Pid, nil
	}
}

// MonitorBinaryName is the monitor's own binary, installed beside lodged.
const MonitorBinaryName = "lodge-monitor"

// MonitorBinary is the program StartMonitor runs: lodge-monitor beside the
// running executable, else on $PATH, else the running executable itself
// (lodged can still act as a monitor, only slower to start and larger).
var MonitorBinary = sync.OnceValues(func() (string, error) {
	if p, err := paths.Helper(MonitorBinaryName); err == nil {
		return p, nil
	}
	return os.Executable()
})

// monitorEnv is the environment a monitor gets: the daemon's, without the
// markers that would make it another stage of lodged, and with one P for
// the Go runtime unless GOMAXPROCS is set already. A monitor, and the
// container's init libcontainer starts from it (which gets the monitor's
// GOMAXPROCS), only wait on pipes and the kernel: with one P each boots
// without starting a thread per CPU it never uses, ~2.6 ms less CPU per
// process on two cores (perf stat of lodge-monitor's start, mean of 6),
// paid twice by every container start.
func monitorEnv() []string {
	var env []string
	procs := false
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "_LODGE_STAGE=") || strings.HasPrefix(kv, "NOTIFY_SOCKET=") {
			continue
		}
		procs = procs || strings.HasPrefix(kv, "GOMAXPROCS=")
		env = append(env, kv)
	}
	if !procs {
		env = append(env, "GOMAXPROCS=1")
	}
	return env
}

// classifyStartError makes a monitor's start failure an error: a problem
// with the executable is the request's fault (400, with libcontainer's
// text, from which the CLI picks 127 or 126); anything else is lodge's.
func classifyStartError(msg string) error {
	if FailureCode(msg) != 0 {
		return errdefs.InvalidArgumentf("failed to create task for container: %s: unknown", msg)
	}
	return errors.New(msg)
}

// FailureCode is the exit code Docker gives a process that could not be
// started, from the runtime's message: 127 when the executable is not
// there, 126 when it cannot be run, 0 when the executable is not the
// problem.
func FailureCode(msg string) int {
	switch {
	case strings.Contains(msg, "executable file not found"), strings.Contains(msg, "no such file or directory"):
		return 127
	case strings.Contains(msg, "permission denied"), strings.Contains(msg, "exec format error"):
		return 126
	}
	return 0
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Ctl talks to a monitor's control socket. It is safe for concurrent use;
// Wait uses a connection of its own.
type Ctl struct {
	sockDir string
	mu      sync.Mutex
	conn    net.Conn
	dec     *json.Decoder
}

// NewCtl returns a client for the monitor whose sockets are in sockDir.
func NewCtl(sockDir string) *Ctl { return &Ctl{sockDir: sockDir} }

// ErrMonitorGone means the monitor does not answer: the container has ended
// (its exit status is on disk) or its monitor was killed.
var ErrMonitorGone = shim.ErrMonitorGone

func (c *Ctl) call(req shim.CtlRequest) (shim.CtlReply, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for attempt := 0; attempt < 2; attempt++ {
		if c.conn == nil {
			conn, err := net.DialTimeout("unix", shim.CtlSocket(c.sockDir), 5*time.Second)
			if err != nil {
				return shim.CtlReply{}, fmt.Errorf("%w: %v", ErrMonitorGone, err)
			}
			c.conn, c.dec = conn, json.NewDecoder(bufio.NewReader(conn))
		}
		err := c.conn.SetDeadline(time.Now().Add(10 * time.Second))
		if err == nil {
			err = json.NewEncoder(c.conn).Encode(req)
		}
		var rep shim.CtlReply
		if err == nil {
			err = c.dec.Decode(&rep)
		}
		if err != nil {
			c.conn.Close()
			c.conn = nil
			continue
		}
		if rep.Error != "" {
			return rep, errors.New(rep.Error)
		}
		return rep, nil
	}
	return shim.CtlReply{}, ErrMonitorGone
}

// Go lets the created container run.
func (c *Ctl) Go() error { _, err := c.call(shim.CtlRequest{Op: "go"}); return err }

// Resize sets the container's tty size.
func (c *Ctl) Resize(width, height uint16) error {
	_, err := c.call(shim.CtlRequest{Op: "resize", Width: width, Height: height})
	return err
}

// Signal sends sig to the container's init process.
func (c *Ctl) Signal(sig syscall.Signal) error {
	_, err := c.call(shim.CtlRequest{Op: "signal", Signal: int(sig)})
	return err
}

// ReopenLog makes the monitor close the container's log file and open
// the one at its path again (or anew): the kubelet renamed it.
func (c *Ctl) ReopenLog() error {
	_, err := c.call(shim.CtlRequest{Op: "reopenlog"})
	return err
}

// Running reports whether the container's process is alive, and its pid.
func (c *Ctl) Running() (int, bool, error) {
	rep, err := c.call(shim.CtlRequest{Op: "state"})
	return rep.Pid, rep.Running, err
}

// Close drops the control connection.
func (c *Ctl) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

// Wait blocks until the container exits and returns how it ended. When the
// monitor is already gone it returns ErrMonitorGone: read the exit file.
func Wait(ctx context.Context, sockDir string) (shim.ExitStatus, error) {
	conn, err := net.Dial("unix", shim.CtlSocket(sockDir))
	if err != nil {
		return shim.ExitStatus{}, fmt.Errorf("%w: %v", ErrMonitorGone, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if err := json.NewEncoder(conn).Encode(shim.CtlRequest{Op: "wait"}); err != nil {
		return shim.ExitStatus{}, ErrMonitorGone
	}
	var rep shim.CtlReply
	if err := json.NewDecoder(conn).Decode(&rep); err != nil || rep.Exit == nil {
		if ctx.Err() != nil {
			return shim.ExitStatus{}, ctx.Err()
		}
		return shim.ExitStatus{}, ErrMonitorGone
	}
	return *rep.Exit, nil
}

// ReadExit reads the exit status a monitor recorded.
func ReadExit(path string) (shim.ExitStatus, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return shim.ExitStatus{}, err
	}
	var st shim.ExitStatus
	err = json.Unmarshal(b, &st)
	return st, err
}

// Attach opens an attach connection to a monitor. Output arrives framed
// (see shim.ReadFrame); what is written goes to the container's stdin; closing
// the write side ends stdin for a StdinOnce container.
func Attach(sockDir string, req shim.AttachRequest) (*net.UnixConn, error) {
	conn, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: shim.AttachSocket(sockDir), Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMonitorGone, err)
	}
	if err := json.NewEncoder(conn).Encode(req); err != nil {
		conn.Close()
		return nil, err
	}
	if err := conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		conn.Close()
		return nil, err
	}
	if _, _, err := shim.ReadFrame(conn, nil); err != nil {
		conn.Close()
		return nil, fmt.Errorf("%w: no attach acknowledgement: %v", ErrMonitorGone, err)
	}
	// The stream lasts as long as the container's output: no deadline.
	if err := conn.SetReadDeadline(time.Time{}); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}
