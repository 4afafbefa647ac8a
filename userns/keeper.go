package userns

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lodge-containers/lodge/paths"
	"github.com/lodge-containers/lodge/proc"
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

// EnvKeeperAdopt marks a keeper that a daemon starts because the keeper
// it ran under died: it joins nothing (it is already in the namespaces,
// as its daemon is) and takes over the host side's work at once.
const EnvKeeperAdopt = "_LODGE_KEEPER_ADOPT=1"

// KeeperConfig says what the keeper does besides holding the namespaces.
type KeeperConfig struct {
	RunDir string
	// StateDir is rootlesskit's state directory.
	StateDir string
	// TakeOver re-creates, from inside the namespaces, what lodged's host
	// side served (the uplink, the port driver and rootlesskit's API
	// socket) once that side is dead. It runs at most once; nil leaves
	// the namespace without them.
	TakeOver func() (*TakenOver, error)
}

// TakenOver is what TakeOver started.
type TakenOver struct {
	// Helpers are child processes (the uplink) that do not count as work
	// keeping the keeper alive.
	Helpers []int
	// Stop ends them; the keeper calls it before it exits.
	Stop func()
}

// RunKeeper is the keeper's main loop. It returns when the keeper is no
// longer needed: nothing but itself and its helpers is left in its user
// namespace.
//
// The keeper watches the two host-side processes above it (rootlesskit's
// child, its parent, and the host-side lodged, EnvParentPID): when either
// dies, it ends the other and takes over their work with cfg.TakeOver, so
// running containers keep their ports and uplink. It no longer dies with
// its parent (rootlesskit starts it with a parent-death signal).
func RunKeeper(cfg KeeperConfig) error {
	runDir := cfg.RunDir
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("keeper: subreaper: %w", err)
	}
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("keeper: parent-death signal: %w", err)
	}
	adopt := os.Getenv(strings.SplitN(EnvKeeperAdopt, "=", 2)[0]) != ""
	os.Unsetenv(strings.SplitN(EnvKeeperAdopt, "=", 2)[0])
	if !adopt && cfg.StateDir != "" {
		if err := pinUplink(cfg.StateDir, UplinkNSPath(runDir)); err != nil {
			return fmt.Errorf("keeper: %w", err)
		}
	}
	if !adopt {
		if err := startPin(); err != nil {
			fmt.Fprintln(os.Stderr, "lodged: keeper: no process holds the namespaces should the keeper die:", err)
		}
	}
	k := &keeper{daemons: map[int]*net.UnixConn{}, exited: make(chan struct{}, 1), helpers: map[int]bool{}, adopt: adopt, runDir: runDir}
	hostSide := hostSidePIDs(adopt)
	tookOver := make(chan *TakenOver, 1)
	if adopt {
		// Before a daemon can be started: it finds the port driver
		// and the uplink in place.
		tookOver <- k.takeOver(cfg, hostSide)
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
	if !adopt {
		go func() {
			waitAnyGone(hostSide)
			fmt.Fprintln(os.Stderr, "lodged: keeper: the host side of lodged died; taking over its uplink and ports")
			tookOver <- k.takeOver(cfg, hostSide)
		}()
	}
	var taken *TakenOver
	defer func() {
		if taken != nil && taken.Stop != nil {
			taken.Stop()
		}
	}()
	// Exit once idle: no daemon and no other process in the namespace
	// for a grace period (a restart reconnects within it).
	idleSince := time.Time{}
	for {
		select {
		case <-k.exited:
		case t := <-tookOver:
			taken = t
		case <-time.After(500 * time.Millisecond):
		}
		k.mu.Lock()
		idle := len(k.daemons) == 0 && k.starting == 0 && !k.othersInNamespace()
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

// UplinkNSPath is where the keeper keeps the uplink network namespace
// mounted for the daemon: outside rootlesskit's state directory, which its
// parent removes when it ends, so the namespace (and the bridges in it)
// outlives the host side.
func UplinkNSPath(runDir string) string { return filepath.Join(runDir, "uplink.netns") }

func pinUplink(stateDir, path string) error {
	from := filepath.Join(stateDir, "netns")
	if _, err := os.Stat(from); err != nil {
		return nil // no detached namespace (network driver none)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDONLY, 0o600)
	if err != nil {
		return err
	}
	f.Close()
	if err := unix.Mount(from, path, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("keeping the uplink namespace at %s: %w", path, err)
	}
	return nil
}

// hostSidePIDs are the processes above the keeper that it watches: its
// parent (rootlesskit's child) and the host-side lodged. A keeper a daemon
// started has only the latter, dying or dead.
func hostSidePIDs(adopt bool) []int {
	var pids []int
	if p, err := strconv.Atoi(os.Getenv(EnvParentPID)); err == nil && p > 1 {
		pids = append(pids, p)
	}
	if !adopt {
		pids = append(pids, os.Getppid())
	}
	return pids
}

// waitAnyGone blocks until one of pids has ended.
func waitAnyGone(pids []int) {
	var fds []unix.PollFd
	for _, p := range pids {
		fd, err := unix.PidfdOpen(p, 0)
		if err != nil {
			return // already gone
		}
		defer unix.Close(fd)
		fds = append(fds, unix.PollFd{Fd: int32(fd), Events: unix.POLLIN})
	}
	if len(fds) == 0 {
		return
	}
	// A parent that died before its pidfd was opened: the keeper is
	// re-parented, and the pid may be someone else's by now.
	if len(pids) > 1 && os.Getppid() != pids[len(pids)-1] {
		return
	}
	for {
		n, err := unix.Poll(fds, -1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || n > 0 {
			return
		}
	}
}

// takeOver ends what is left of the host side, then runs cfg.TakeOver.
func (k *keeper) takeOver(cfg KeeperConfig, hostSide []int) *TakenOver {
	for _, p := range hostSide {
		// Only a process of this user (uid 0 here) is signalled: the pid
		// came from the environment.
		if st, err := os.Stat(fmt.Sprintf("/proc/%d", p)); err == nil {
			if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Uid) == os.Getuid() {
				syscall.Kill(p, syscall.SIGKILL)
			}
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, p := range hostSide {
		for processAlive(p) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
	}
	os.Unsetenv(EnvParentPID) // daemons started from now on have no host side
	// The host side held the keeper's lock; now this process is it.
	var lock *paths.DaemonLock
	for lock == nil && time.Now().Before(deadline) {
		l, err := paths.LockKeeper(cfg.RunDir)
		if err == nil {
			lock = l
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if cfg.TakeOver == nil {
		return nil
	}
	t, err := cfg.TakeOver()
	if err != nil {
		fmt.Fprintln(os.Stderr, "lodged: keeper: taking over the uplink and ports:", err)
		return nil
	}
	k.mu.Lock()
	for _, p := range t.Helpers {
		k.helpers[p] = true
	}
	k.mu.Unlock()
	return t
}

// processAlive tells whether pid exists and is not a zombie.
func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || (s[i+2] != 'Z' && s[i+2] != 'X')
}

// othersInNamespace tells whether any live process other than the keeper,
// its parent and its helpers is in the keeper's user namespace: a daemon,
// a monitor or a container. Callers hold k.mu.
func (k *keeper) othersInNamespace() bool {
	self, err := os.Readlink("/proc/self/ns/user")
	if err != nil {
		return hasChildren()
	}
	ents, _ := os.ReadDir("/proc")
	// Under rootlesskit the parent is its child, in the namespace too; a
	// keeper a daemon started has that daemon as its parent.
	me, parent := os.Getpid(), os.Getppid()
	if k.adopt {
		parent = -1
	}
	pin := readPID(PinPIDFile(k.runDir))
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == me || pid == parent || pid == pin || k.helpers[pid] {
			continue
		}
		// rootlesskit's child runs the uplink's namespace half
		// (lodge-usernet) as its own child.
		if parent > 0 && parentOf(pid) == parent {
			continue
		}
		if ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/user", pid)); err == nil && ns == self && processAlive(pid) {
			return true
		}
	}
	return false
}

type keeper struct {
	mu       sync.Mutex
	daemons  map[int]*net.UnixConn
	starting int
	exited   chan struct{}
	helpers  map[int]bool // processes TakeOver started
	adopt    bool         // started by a daemon, not under rootlesskit
	runDir   string
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
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	return startKeeper(runDir, exec.Command(exe, os.Args[1:]...), env, logPath, wait)
}

// RejoinKeeper starts a keeper inside the user and mount namespaces of
// the process pid (a surviving container monitor, whose namespaces are
// lodged's), where it takes over the uplink and the port driver as after
// a death of the host side, and waits until it answers. It is how a start
// comes back to running containers whose keeper and daemon are both gone:
// they keep exec, ports and the uplink, which a new namespace would cut
// them off from. util-linux's nsenter enters the namespaces, which needs a
// single-threaded process. Callers verify that pid is lodged's.
func RejoinKeeper(runDir string, pid int, env []string, logPath string, wait time.Duration) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	nsenter, err := exec.LookPath("nsenter")
	if err != nil {
		return fmt.Errorf("nsenter (util-linux) is needed to come back into the running containers' namespaces: %w", err)
	}
	args := append([]string{"--target", strconv.Itoa(pid), "--user", "--mount", "--preserve-credentials", "--", exe}, os.Args[1:]...)
	return startKeeper(runDir, exec.Command(nsenter, args...), append(env, envStage+"=keeper", EnvKeeperAdopt), logPath, wait)
}

func startKeeper(runDir string, cmd *exec.Cmd, env []string, logPath string, wait time.Duration) error {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
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

// PinPIDFile names the pin's pid.
func PinPIDFile(runDir string) string { return filepath.Join(runDir, "pin.pid") }

// startPin starts the pin from the keeper, in the keeper's namespaces.
func startPin() error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, envStage+"=") {
			env = append(env, kv)
		}
	}
	p, err := os.StartProcess(exe, []string{exe}, &os.ProcAttr{
		Dir: "/", Env: append(env, envStage+"=pin"),
		Sys: &syscall.SysProcAttr{Setsid: true},
	})
	if err != nil {
		return err
	}
	return p.Release() // the keeper reaps every child
}

// RunPin is the pin: a process that only stays in lodged's user and mount
// namespaces (where the uplink namespace is mounted) while anything else
// runs in them. Containers' monitors live in their containers' mount
// namespaces, so when the keeper and the daemon both die, the pin is what
// keeps lodged's own, and what a new start re-joins (RejoinKeeper). It
// exits once nothing but keepers and itself is left.
func RunPin(runDir string) {
	unix.Prctl(unix.PR_SET_PDEATHSIG, 0, 0, 0, 0)
	signal.Ignore(syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM)
	self := os.Getpid()
	tmp := PinPIDFile(runDir) + ".tmp"
	if os.WriteFile(tmp, []byte(strconv.Itoa(self)+"\n"), 0o600) != nil || os.Rename(tmp, PinPIDFile(runDir)) != nil {
		return
	}
	defer func() {
		if readPID(PinPIDFile(runDir)) == self {
			os.Remove(PinPIDFile(runDir))
		}
	}()
	// The keeper that started it, rootlesskit's child above that one and
	// that child's helpers do not count: they end by themselves when
	// nothing runs.
	keeper := os.Getppid()
	rkChild := parentOf(keeper)
	skip := map[int]bool{self: true, keeper: true, rkChild: true}
	nsPath, err := os.Readlink("/proc/self/ns/user")
	if err != nil {
		return
	}
	idleSince := time.Time{}
	for {
		time.Sleep(500 * time.Millisecond)
		busy := false
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || skip[pid] || parentOf(pid) == rkChild {
				continue // rkChild's own are the uplink's namespace half
			}
			if ns, err := os.Readlink("/proc/" + e.Name() + "/ns/user"); err == nil && ns == nsPath && processAlive(pid) {
				busy = true
				break
			}
		}
		switch {
		case busy:
			idleSince = time.Time{}
		case idleSince.IsZero():
			idleSince = time.Now()
		case time.Since(idleSince) > 2*time.Second:
			return
		}
	}
}

// readPID reads a pid file, 0 when absent or garbled.
func readPID(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// parentOf is pid's parent, 0 when unknown.
func parentOf(pid int) int {
	st, _ := proc.ReadStat(pid) // the zero Stat when pid is gone
	return st.PPID
}

// Pin returns the pid of the pin in runDir when it is alive, runs as this
// user in a user namespace other than the caller's, and is lodged's pin
// (this executable, stage pin); 0 otherwise.
func Pin(runDir string) int {
	pid := readPID(PinPIDFile(runDir))
	if pid <= 1 || !processAlive(pid) {
		return 0
	}
	var st syscall.Stat_t
	if syscall.Stat(fmt.Sprintf("/proc/%d", pid), &st) != nil || int(st.Uid) != os.Getuid() {
		return 0
	}
	self, _ := os.Readlink("/proc/self/ns/user")
	if ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/user", pid)); err != nil || ns == self {
		return 0
	}
	env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil || !bytes.Contains(append([]byte{0}, env...), []byte("\x00"+envStage+"=pin\x00")) {
		return 0
	}
	return pid
}
