package userns

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
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
	// Exe is the lodged to run: the asker's own binary (the keeper is
	// lodge-keeper, which has no daemon in it).
	Exe  string   `json:"exe"`
	Args []string `json:"args"`
	Env  []string `json:"env"`
	Dir  string   `json:"dir"`
	// Check, in a request with no descriptors, tells the keeper that a
	// daemon started or adopted a container (it starts a pin unless one
	// lives) or, with Ended, that a container ended (it wakes the pin if
	// nothing seems left to hold): it answers with an empty reply.
	Check bool `json:"check,omitempty"`
	Ended bool `json:"ended,omitempty"`
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
	k := &keeper{daemons: map[int]*net.UnixConn{}, exited: make(chan struct{}, 1), check: make(chan struct{}, 1), helpers: map[int]bool{}, adopt: adopt, runDir: runDir}
	hostSide := hostSidePIDs(adopt)
	tookOver := make(chan *TakenOver, 1)
	if adopt {
		// Before a daemon can be started: it finds the port driver
		// and the uplink in place.
		tookOver <- k.takeOver(cfg, hostSide)
	}
	sock := KeeperSocket(runDir)
	// A dead keeper's: the keeper lock (held by the host side) says none
	// runs.
	if err := os.Remove(sock); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("keeper: %w", err)
	}
	old := syscall.Umask(0o177)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	syscall.Umask(old)
	if err != nil {
		return fmt.Errorf("keeper: %w", err)
	}
	// What is left, the next keeper removes before it listens.
	defer func() { _ = os.Remove(sock) }()
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
	period := 500 * time.Millisecond
	for {
		select {
		case <-k.exited:
		case <-k.check:
		case t := <-tookOver:
			taken = t
		case <-time.After(period):
		}
		k.mu.Lock()
		var others, containers bool
		ended := k.ended
		k.ended = false
		daemons := k.liveDaemons()
		if len(daemons) > 0 || k.starting > 0 {
			// Not idle, whatever else runs: what is left to know is
			// whether a pin is needed, and only while none is alive,
			// through the children of the keeper and its daemons. A
			// walk of /proc here, twice a second for as long as lodged
			// ran, cost the keeper 1.4% of a CPU at rest on a machine
			// of 90 processes, and grew with the machine's processes.
			// A start said while a pin lives needs nothing more.
			if pin := k.livePin(); pin == 0 {
				containers = k.hasWorkChildren(daemons)
			} else if ended && !k.hasWorkChildren(daemons) {
				// A container ended and none seems left: the
				// pin looks for itself, and goes if so.
				wakePin(k.runDir, pin)
			}
		} else {
			others, containers = k.othersInNamespace()
		}
		idle := len(daemons) == 0 && k.starting == 0 && !others
		k.mu.Unlock()
		// A daemon's end comes through k.exited, and its containers'
		// starts and ends through k.check (CheckPin): with one running, the look
		// only asks whether the pin is needed, and a slow one is the
		// fallback. Looking every 2 s cost the keeper 60 ms of CPU a
		// minute at rest, half of all lodge's processes'.
		period = 500 * time.Millisecond
		if len(daemons) > 0 {
			period = 30 * time.Second
		}
		if containers {
			k.ensurePin()
		}
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

// othersInNamespace tells whether any live process other than the keeper,
// its parent, its helpers and the pin is in the keeper's user namespace (a
// daemon, a monitor or a container), and whether any of those is not a
// daemon: what the pin is for. Callers hold k.mu.
func (k *keeper) othersInNamespace() (others, containers bool) {
	self, err := os.Readlink("/proc/self/ns/user")
	if err != nil {
		return hasChildren(), false
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
		if ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/user", pid)); err == nil && ns == self && proc.Alive(pid) {
			others = true
			if !isStage(pid, "daemon") {
				return true, true
			}
		}
	}
	return others, false
}

// ensurePin starts the pin unless one is alive: while anything but
// daemons runs in the namespaces (containers, their monitors), a start
// after the keeper and the daemon both died re-joins them through it.
// With no container it is not needed, and not started: it would idle
// beside the keeper for nothing. Callers hold k.mu.
func (k *keeper) ensurePin() {
	if k.livePin() > 0 {
		return
	}
	pid, err := startPin()
	if err != nil {
		fmt.Fprintln(os.Stderr, "lodged: keeper: no process holds the namespaces should the keeper die:", err)
		return
	}
	k.pin = pid
}

// livePin is the pin that holds the namespaces, 0 if none does: this
// keeper's, or one an earlier keeper started. Callers hold k.mu.
func (k *keeper) livePin() int {
	if k.pin > 0 && proc.Alive(k.pin) {
		return k.pin
	}
	if pid := readPID(PinPIDFile(k.runDir)); pid > 0 && proc.Alive(pid) && isStage(pid, "pin") {
		return pid
	}
	return 0
}

// liveDaemons are the daemons this keeper started and, for a keeper a
// daemon started (adopt), that daemon while it lives. Callers hold k.mu.
func (k *keeper) liveDaemons() []int {
	var out []int
	for pid := range k.daemons {
		out = append(out, pid)
	}
	if ppid := os.Getppid(); k.adopt && isStage(ppid, "daemon") {
		out = append(out, ppid)
	}
	return out
}

// hasWorkChildren tells whether the keeper or one of daemons has a child
// that is none of the keeper's daemons, helpers or pin, nor a keeper: a
// monitor, with its container, or what else a daemon runs in the
// namespaces. It reads the children of those few processes, not every
// process; where the kernel lists no children (/proc/PID/task/TID/
// children), it walks /proc as othersInNamespace does. Callers hold k.mu.
func (k *keeper) hasWorkChildren(daemons []int) bool {
	parents := append([]int{os.Getpid()}, daemons...)
	for _, parent := range parents {
		kids, err := childrenOf(parent)
		if err != nil {
			if parent == os.Getpid() {
				_, containers := k.othersInNamespace()
				return containers
			}
			continue // a daemon that just ended
		}
		for _, c := range kids {
			if _, daemon := k.daemons[c]; daemon || k.helpers[c] || c == k.pin || c == os.Getpid() {
				continue
			}
			if !isStage(c, "keeper") && !isStage(c, "pin") {
				return true
			}
		}
	}
	return false
}

// childrenOf lists pid's children, from each of its threads' children
// file.
func childrenOf(pid int) ([]int, error) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return nil, err
	}
	var out []int
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, t.Name()))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) && t.Name() != strconv.Itoa(pid) {
				continue // a thread that just ended
			}
			return nil, err
		}
		for _, f := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(f); err == nil {
				out = append(out, c)
			}
		}
	}
	return out, nil
}

type keeper struct {
	mu       sync.Mutex
	daemons  map[int]*net.UnixConn
	starting int
	exited   chan struct{}
	check    chan struct{} // a daemon asked for a look (CheckPin)
	ended    bool          // ... and said a container ended
	helpers  map[int]bool  // processes TakeOver started
	pin      int           // the pin this keeper started last
	adopt    bool          // started by a daemon, not under rootlesskit
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
	// The descriptors come with the request's first bytes; the rest of
	// a long one (a large environment) follows. A buffer for the whole
	// of the largest request, 1 MiB, made per request, had kept the
	// keeper's heap 2 MiB larger after a few container starts.
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4*4))
	n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil || n == 0 && oobn == 0 {
		return // a look whether the keeper answers
	}
	var req startRequest
	reqErr := json.NewDecoder(io.MultiReader(bytes.NewReader(buf[:n]), io.LimitReader(c, 1<<20))).Decode(&req)
	fds, err := parseRights(oob[:oobn])
	if err == nil && len(fds) == 0 {
		if reqErr != nil || !req.Check {
			k.refuse(c, "keeper: want a request with 3 descriptors (4 with a listener), or a check")
			return
		}
		if req.Ended {
			k.mu.Lock()
			k.ended = true
			k.mu.Unlock()
		}
		select {
		case k.check <- struct{}{}:
		default:
		}
		_ = json.NewEncoder(c).Encode(keeperReply{}) // the asker may be gone: the look is due all the same
		return
	}
	if err != nil || len(fds) < 3 || len(fds) > 4 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		k.refuse(c, "keeper: want a request with 3 descriptors (4 with a listener)")
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
	if err := reqErr; err != nil {
		k.refuse(c, "keeper: bad request: "+err.Error())
		return
	}
	exe := req.Exe
	if !filepath.IsAbs(exe) {
		k.refuse(c, "keeper: the request names no lodged to run (a lodged older than this keeper?): stop lodged and start it again")
		return
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
		k.refuse(c, "keeper: starting lodged: "+err.Error())
		return
	}
	k.daemons[p.Pid] = c
	started = true
	k.mu.Unlock()
	if err := json.NewEncoder(c).Encode(keeperReply{Pid: p.Pid}); err != nil {
		// The asker went away: the daemon runs all the same, and its end
		// is reaped as any daemon's.
		fmt.Fprintln(os.Stderr, "lodged: keeper: started lodged (pid", p.Pid, ") for an asker that went away:", err)
	}
}

// refuse answers a request the keeper does not run, and says it in the
// keeper's log too: an asker that went away cannot read the answer.
func (k *keeper) refuse(c *net.UnixConn, msg string) {
	fmt.Fprintln(os.Stderr, "lodged:", msg)
	_ = json.NewEncoder(c).Encode(keeperReply{Error: msg}) // said above, whoever reads it
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
			// The asker may be gone (lodged --detach returns once the
			// daemon answers): then no one waits for this.
			_ = json.NewEncoder(c).Encode(keeperReply{Exit: &code})
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
