package userns

import (
	"bytes"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lodge-containers/lodge/proc"
)

// PinPIDFile names the pin's pid.
func PinPIDFile(runDir string) string { return filepath.Join(runDir, "pin.pid") }

// startPin starts the pin from the keeper, in the keeper's namespaces,
// and returns its pid.
func startPin() (int, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, err
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
		return 0, err
	}
	pid := p.Pid
	return pid, p.Release() // the keeper reaps every child
}

// isStage tells whether pid is one of lodged's processes in stage name
// (its environment says so).
func isStage(pid int, name string) bool {
	env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	return err == nil && bytes.Contains(append([]byte{0}, env...), []byte("\x00"+envStage+"="+name+"\x00"))
}

// RunPin is the pin: a process that only stays in lodged's user and mount
// namespaces (where the uplink namespace is mounted) while containers run
// in them. Containers' monitors live in their containers' mount
// namespaces, so when the keeper and the daemon both die, the pin is what
// keeps lodged's own, and what a new start re-joins (RejoinKeeper). The
// keeper starts it when a container runs, and it exits once nothing but
// keepers, daemons and itself is left.
func RunPin(runDir string) {
	signal.Ignore(syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM)
	// Before the pid file names it: the keeper wakes only the pin the
	// file names, and an unhandled SIGUSR1 would kill it.
	wake := make(chan os.Signal, 1)
	signal.Notify(wake, syscall.SIGUSR1)
	// The pin outlives its keeper, and is woken when it dies: it then
	// looks every 2 s, by itself. (A wake for a thread of the keeper
	// that ended only makes it look once.) Setting it fails only for a
	// bad signal number.
	_ = unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(syscall.SIGUSR1), 0, 0, 0)
	self := os.Getpid()
	tmp := PinPIDFile(runDir) + ".tmp"
	if os.WriteFile(tmp, []byte(strconv.Itoa(self)+"\n"), 0o600) != nil || os.Rename(tmp, PinPIDFile(runDir)) != nil {
		return
	}
	defer func() {
		if readPID(PinPIDFile(runDir)) == self {
			// The pin has no stdio to say a failure on; a file left
			// names a dead pid, which Pin and the keeper check for.
			_ = os.Remove(PinPIDFile(runDir))
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
	// Every process in the namespace, from /proc: what the pin must do
	// once its keeper is gone.
	walk := func() bool {
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || skip[pid] {
				continue
			}
			if ns, err := os.Readlink("/proc/" + e.Name() + "/ns/user"); err != nil || ns != nsPath || !proc.Alive(pid) {
				continue
			}
			// rkChild's own are the uplink's namespace half; daemons
			// and keepers do not need the pin.
			if parentOf(pid) != rkChild && !isStage(pid, "daemon") && !isStage(pid, "keeper") {
				return true
			}
		}
		return false
	}
	// While its keeper lives, the keeper wakes the pin (SIGUSR1) when a
	// daemon says a container ended and nothing seems to run: the pin
	// then looks for itself. Between wakes it looks every 30 s; looking
	// every 2 s cost it 53 ms of CPU a minute while a container ran,
	// more than all of lodge's other processes.
	idleSince := time.Time{}
	for {
		// Nothing is in a hurry here: a pin outlives the last container
		// by a few seconds, for nothing worse than that.
		period := 2 * time.Second
		if idleSince.IsZero() && os.Getppid() == keeper {
			period = pinIdlePeriod
		}
		t := time.NewTimer(period)
		select {
		case <-t.C:
		case <-wake:
			t.Stop()
		}
		var busy bool
		var err error
		if os.Getppid() == keeper {
			// While its keeper lives, every container hangs below it
			// or its daemons: their children tell, without reading
			// every process on the machine twice a second (which cost
			// the pin 5.5 ms of CPU a second with ten containers, and
			// grew with the machine).
			busy, err = keeperHasWork(keeper, self)
		}
		if os.Getppid() != keeper || err != nil {
			busy = walk()
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

// pinIdlePeriod is how often a pin whose keeper lives looks whether it
// is still needed, when nobody wakes it.
const pinIdlePeriod = 30 * time.Second

// wakePin asks the pin pid to look now whether it is still needed, if
// it is the pin the pid file in runDir names (which it writes once it
// handles the signal) and still a pin (not a pid reused since).
func wakePin(runDir string, pid int) {
	if readPID(PinPIDFile(runDir)) != pid || !isStage(pid, "pin") {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGUSR1) // a pin gone meanwhile needs no wake
}

// keeperHasWork tells whether the keeper or a daemon it started has a child
// other than a daemon, a keeper or the pin: a monitor with its container,
// or a helper the keeper took over.
func keeperHasWork(keeper, pin int) (bool, error) {
	kids, err := childrenOf(keeper)
	if err != nil {
		return false, err
	}
	// A keeper a daemon started (its keeper had died) is that daemon's
	// child, and the daemon's containers are not the keeper's.
	if ppid := parentOf(keeper); isStage(ppid, "daemon") {
		kids = append(kids, ppid)
	}
	for _, c := range kids {
		switch {
		case c == pin || isStage(c, "keeper"):
		case isStage(c, "daemon"):
			dk, err := childrenOf(c)
			if err != nil {
				continue // a daemon that just ended
			}
			for _, d := range dk {
				if !isStage(d, "keeper") {
					return true, nil
				}
			}
		default:
			return true, nil
		}
	}
	return false, nil
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
	if pid <= 1 || !proc.Alive(pid) {
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
	if !isStage(pid, "pin") {
		return 0
	}
	return pid
}
