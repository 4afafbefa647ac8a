package userns

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lodge-containers/lodge/paths"
)

// The keeper holds lodged's namespaces. It is the process rootlesskit's
// child runs inside the user, mount and network namespaces, and it starts
// API daemons there on request (over KeeperSocket). A daemon can so die,
// even by kill -9, and a new one comes back into the same namespaces, where
// the running containers are: exec, signals and mounts keep working. This is
// what Podman's pause process does for Podman.
//
// The keeper is a child subreaper: containers' monitors whose daemon died
// are re-parented to it. It exits when it has neither a daemon nor any
// other child left.

// KeeperSocket is where the keeper takes requests.
func KeeperSocket(runDir string) string { return filepath.Join(runDir, "keeper.sock") }

// startRequest asks the keeper to run a daemon; its three stdio descriptors
// travel with it as SCM_RIGHTS, and a fourth when the API socket was
// handed to lodged (systemd socket activation).
type startRequest struct {
	Args []string `json:"args"`
	Env  []string `json:"env"`
	Dir  string   `json:"dir"`
}

// keeperReply is sent once with Pid (or Error), and once more with Exit
// when the daemon has ended.
type keeperReply struct {
	Pid   int    `json:"pid,omitempty"`
	Exit  *int   `json:"exit,omitempty"`
	Error string `json:"error,omitempty"`
}

// RunKeeper is the keeper's main loop. It returns when the keeper is no
// longer needed.
func RunKeeper(runDir string) error {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("keeper: subreaper: %w", err)
	}
	sock := KeeperSocket(runDir)
	os.Remove(sock)
	old := syscall.Umask(0o177)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	syscall.Umask(old)
	if err != nil {
		return fmt.Errorf("keeper: %w", err)
	}
	defer os.Remove(sock)
	k := &keeper{daemons: map[int]*net.UnixConn{}, exited: make(chan struct{}, 1)}
	go k.reap()
	go func() {
		for {
			c, err := l.AcceptUnix()
			if err != nil {
				return
			}
			go k.serve(c)
		}
	}()
	// Exit once idle: no daemon and no other child for a grace period (a
	// restart reconnects within it).
	idleSince := time.Time{}
	for {
		select {
		case <-k.exited:
		case <-time.After(500 * time.Millisecond):
		}
		k.mu.Lock()
		idle := len(k.daemons) == 0 && k.starting == 0 && !hasChildren()
		k.mu.Unlock()
		switch {
		case !idle:
			idleSince = time.Time{}
		case idleSince.IsZero():
			idleSince = time.Now()
		case time.Since(idleSince) > 2*time.Second:
			l.Close()
			return nil
		}
	}
}

type keeper struct {
	mu       sync.Mutex
	daemons  map[int]*net.UnixConn
	starting int
	exited   chan struct{}
}

func (k *keeper) serve(c *net.UnixConn) {
	k.mu.Lock()
	k.starting++
	k.mu.Unlock()
	started := false
	defer func() {
		k.mu.Lock()
		k.starting--
		k.mu.Unlock()
		if !started {
			c.Close()
		}
	}()
	if uid, err := paths.PeerUID(c); err != nil || uid != os.Getuid() {
		return
	}
	buf := make([]byte, 1<<20)
	oob := make([]byte, unix.CmsgSpace(4*4))
	n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil {
		return
	}
	fds, err := parseRights(oob[:oobn])
	if err != nil || len(fds) < 3 || len(fds) > 4 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		json.NewEncoder(c).Encode(keeperReply{Error: "keeper: want a request with 3 descriptors (4 with a listener)"})
		return
	}
	stdio := []*os.File{os.NewFile(uintptr(fds[0]), "stdin"), os.NewFile(uintptr(fds[1]), "stdout"), os.NewFile(uintptr(fds[2]), "stderr")}
	if len(fds) == 4 {
		stdio = append(stdio, os.NewFile(uintptr(fds[3]), "listener")) // fd 3 in the daemon
	}
	defer func() {
		for _, f := range stdio {
			f.Close()
		}
	}()
	var req startRequest
	if err := json.Unmarshal(buf[:n], &req); err != nil {
		json.NewEncoder(c).Encode(keeperReply{Error: "keeper: bad request: " + err.Error()})
		return
	}
	exe, err := os.Executable()
	if err != nil {
		exe = "/proc/self/exe"
	}
	env := mergeEnv(req.Env, os.Environ())
	env = append(env, envStage+"=daemon")
	if len(stdio) == 4 {
		env = append(env, EnvListenFD+"=3")
	}
	k.mu.Lock()
	p, err := os.StartProcess(exe, append([]string{exe}, req.Args...), &os.ProcAttr{
		Dir:   req.Dir,
		Env:   env,
		Files: stdio,
		Sys:   &syscall.SysProcAttr{Setsid: true},
	})
	if err != nil {
		k.mu.Unlock()
		json.NewEncoder(c).Encode(keeperReply{Error: "keeper: starting lodged: " + err.Error()})
		return
	}
	k.daemons[p.Pid] = c
	started = true
	k.mu.Unlock()
	json.NewEncoder(c).Encode(keeperReply{Pid: p.Pid})
}

// reap collects every child: daemons' statuses go back to whoever asked
// for them; orphaned monitors and their leftovers are just reaped.
func (k *keeper) reap() {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, 0, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			time.Sleep(200 * time.Millisecond) // no children now
			continue
		}
		k.mu.Lock()
		c, ok := k.daemons[pid]
		delete(k.daemons, pid)
		k.mu.Unlock()
		if ok {
			code := ws.ExitStatus()
			if ws.Signaled() {
				code = 128 + int(ws.Signal())
			}
			json.NewEncoder(c).Encode(keeperReply{Exit: &code})
			c.Close()
		}
		select {
		case k.exited <- struct{}{}:
		default:
		}
	}
}

func hasChildren() bool {
	tasks, _ := filepath.Glob("/proc/self/task/*/children")
	for _, t := range tasks {
		if b, err := os.ReadFile(t); err == nil && len(strings.TrimSpace(string(b))) > 0 {
			return true
		}
	}
	return false
}

// mergeEnv returns base with the keeper's own lodge variables (the facts
// the set-up learned) added where base lacks them.
func mergeEnv(base, keeperEnv []string) []string {
	have := map[string]bool{}
	for _, kv := range base {
		have[strings.SplitN(kv, "=", 2)[0]] = true
	}
	out := append([]string(nil), base...)
	for _, kv := range keeperEnv {
		k := strings.SplitN(kv, "=", 2)[0]
		if strings.HasPrefix(k, "_LODGE_") && k != envPipeFD && k != envStage && k != EnvListenFD && !have[k] {
			out = append(out, kv)
		}
	}
	return out
}

func parseRights(oob []byte) ([]int, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, err
	}
	var fds []int
	for _, m := range msgs {
		f, err := unix.ParseUnixRights(&m)
		if err != nil {
			return nil, err
		}
		fds = append(fds, f...)
	}
	return fds, nil
}

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
	b, _ := json.Marshal(startRequest{Args: args, Env: env, Dir: dir})
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

// StartKeeper starts the keeper for runDir in the background (a new
// session, logging to log) by running this executable with env added, and
// waits until it answers on its socket. It returns an error holding the
// log's end if the keeper exits first.
func StartKeeper(runDir string, env []string, logPath string, wait time.Duration) error {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(exe, os.Args[1:]...)
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
