package userns

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// keeperPair is a connected pair of unix sockets: the keeper's end and
// the asker's.
func keeperPair(t *testing.T) (keeperEnd, asker *net.UnixConn) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	conn := func(fd int) *net.UnixConn {
		f := os.NewFile(uintptr(fd), "keeper-test")
		defer f.Close()
		c, err := net.FileConn(f)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c.(*net.UnixConn)
	}
	return conn(fds[0]), conn(fds[1])
}

// serveOne has k serve one connection, on which send writes the request,
// and returns the keeper's first reply once serve has returned.
func serveOne(t *testing.T, k *keeper, send func(asker *net.UnixConn) error) keeperReply {
	t.Helper()
	kc, asker := keeperPair(t)
	done := make(chan struct{})
	go func() { k.serve(kc); close(done) }()
	if err := send(asker); err != nil {
		t.Fatal(err)
	}
	_ = asker.SetReadDeadline(time.Now().Add(10 * time.Second))
	var rep keeperReply
	if err := json.NewDecoder(asker).Decode(&rep); err != nil {
		t.Fatal(err)
	}
	<-done
	return rep
}

func newTestKeeper(t *testing.T) *keeper {
	return &keeper{daemons: map[int]*net.UnixConn{}, exited: make(chan struct{}, 1), check: make(chan struct{}, 1), helpers: map[int]bool{}, runDir: t.TempDir()}
}

// A start request longer than the keeper's first read (a large
// environment) is read whole, and the daemon is started with it.
func TestKeeperServesALongStartRequest(t *testing.T) {
	k := newTestKeeper(t)
	env := []string{"PATH=/usr/bin:/bin"}
	for i := 0; i < 200; i++ {
		env = append(env, fmt.Sprintf("LODGE_TEST_BIG%d=%s", i, strings.Repeat("x", 1<<10)))
	}
	b, _ := json.Marshal(startRequest{Exe: "/bin/true", Env: env, Dir: "/"})
	rights := unix.UnixRights(int(os.Stdin.Fd()), int(os.Stdout.Fd()), int(os.Stderr.Fd()))
	rep := serveOne(t, k, func(asker *net.UnixConn) error {
		_, _, err := asker.WriteMsgUnix(b, rights, nil)
		return err
	})
	if rep.Error != "" || rep.Pid <= 0 {
		t.Fatalf("reply %+v, want the started daemon's pid", rep)
	}
	var ws syscall.WaitStatus
	if _, err := syscall.Wait4(rep.Pid, &ws, 0, nil); err != nil {
		t.Fatal(err)
	}
	if _, ok := k.daemons[rep.Pid]; !ok {
		t.Errorf("the keeper does not count pid %d among its daemons", rep.Pid)
	}
}

// A check (no descriptors) is answered, wakes the keeper's loop and
// says whether a container ended; anything else without descriptors is
// refused.
func TestKeeperServesChecks(t *testing.T) {
	for _, tc := range []struct {
		req       any
		wantError bool
		ended     bool
	}{
		{req: startRequest{Check: true}},
		{req: startRequest{Check: true, Ended: true}, ended: true},
		{req: startRequest{Exe: "/bin/true"}, wantError: true},
	} {
		k := newTestKeeper(t)
		b, _ := json.Marshal(tc.req)
		rep := serveOne(t, k, func(asker *net.UnixConn) error {
			_, err := asker.Write(b)
			return err
		})
		if got := rep.Error != ""; got != tc.wantError {
			t.Errorf("%+v: reply %+v", tc.req, rep)
			continue
		}
		woken := len(k.check) == 1
		if woken == tc.wantError || k.ended != tc.ended {
			t.Errorf("%+v: keeper woken %v, ended %v", tc.req, woken, k.ended)
		}
		if len(k.daemons) != 0 {
			t.Errorf("%+v: started a daemon", tc.req)
		}
	}
}
