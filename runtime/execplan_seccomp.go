//go:build cgo

package runtime

/*
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>

// A capture's state, shared by the Go side and its serving thread.
struct lodge_capture {
	int listener;
	int stop;
	int got;
	unsigned short len;
	struct sock_filter *prog;
	unsigned long flags;
	pthread_t thread;
};

// lodge_capture_serve answers every notification until stop: a probe (a
// NULL program) gets the EFAULT the kernel would give it; a load is
// refused, and the first one's program is copied out first (the loading
// thread is blocked in the call, so its memory holds still).
static void *lodge_capture_serve(void *arg)
{
	struct lodge_capture *c = arg;
	while (!__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE)) {
		struct pollfd p = {.fd = c->listener, .events = POLLIN};
		if (poll(&p, 1, 20) <= 0)
			continue;
		if (!(p.revents & POLLIN))
			break;
		struct seccomp_notif req;
		memset(&req, 0, sizeof req);
		if (ioctl(c->listener, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0)
			continue;
		struct seccomp_notif_resp resp;
		memset(&resp, 0, sizeof resp);
		resp.id = req.id;
		resp.error = -EFAULT;
		if (req.data.args[2]) {
			resp.error = -ECANCELED;
			if (!__atomic_load_n(&c->got, __ATOMIC_ACQUIRE)) {
				const struct sock_fprog *fp = (const struct sock_fprog *)(uintptr_t)req.data.args[2];
				c->prog = malloc(sizeof(struct sock_filter) * (fp->len ? fp->len : 1));
				if (c->prog) {
					c->len = fp->len;
					memcpy(c->prog, fp->filter, sizeof(struct sock_filter) * fp->len);
				}
				if (req.data.nr == SYS_seccomp)
					c->flags = (unsigned long)req.data.args[1];
				__atomic_store_n(&c->got, 1, __ATOMIC_RELEASE);
			}
		}
		ioctl(c->listener, SECCOMP_IOCTL_NOTIF_SEND, &resp); // a withdrawn call comes again
	}
	return NULL;
}

static struct lodge_capture *lodge_capture_start(int listener)
{
	struct lodge_capture *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->listener = listener;
	if (pthread_create(&c->thread, NULL, lodge_capture_serve, c) != 0) {
		free(c);
		return NULL;
	}
	return c;
}

static void lodge_capture_stop(struct lodge_capture *c)
{
	__atomic_store_n(&c->stop, 1, __ATOMIC_RELEASE);
	pthread_join(c->thread, NULL);
}

static void lodge_capture_free(struct lodge_capture *c)
{
	free(c->prog);
	free(c);
}
*/
import "C"

import (
	"errors"
	"fmt"
	goruntime "runtime"
	"unsafe"

	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runc/libcontainer/seccomp"
	"golang.org/x/sys/unix"
)

// seccompProgram is the BPF program, and the seccomp(2) flags, that
// libcontainer loads for profile cfg: exactly its program, the -ENOSYS
// stub it prepends for syscalls newer than the profile included.
//
// libcontainer only compiles and loads in one call (seccomp.InitSeccomp),
// so the call is made on a thread of its own that is then thrown away,
// under a filter that hands its loading syscall to this process (seccomp
// user notification): the program is read from the blocked call's
// arguments, and the call fails, leaving no filter. lodge-exec then loads
// the same program in the exec's process.
func seccompProgram(cfg *configs.Seccomp) ([]unix.SockFilter, uint, error) {
	var capture func(done chan<- caughtProgram)
	capture = func(done chan<- caughtProgram) {
		// The thread ends with this goroutine (no UnlockOSThread): its
		// no_new_privs and its filter go with it. The main thread would
		// not end but stay wedged, filter and all: the work moves to
		// another thread then (this one is locked, so it cannot be it).
		goruntime.LockOSThread()
		if unix.Gettid() == unix.Getpid() {
			inner := make(chan caughtProgram, 1)
			go capture(inner)
			r := <-inner
			goruntime.UnlockOSThread()
			done <- r
			return
		}
		listener, err := captureFilter()
		if err != nil {
			done <- caughtProgram{err: fmt.Errorf("catching libcontainer's seccomp load: %w", err)}
			return
		}
		// The answers come from a C thread: the loading call may be a raw
		// syscall, which holds its P while it waits, and a Go answerer
		// would wait in turn for a P, or for a GC stop that waits on the
		// blocked call.
		c := C.lodge_capture_start(C.int(listener))
		if c == nil {
			unix.Close(listener)
			done <- caughtProgram{err: errors.New("starting the seccomp capture's thread")}
			return
		}
		_, lerr := seccomp.InitSeccomp(cfg)
		C.lodge_capture_stop(c)
		unix.Close(listener)
		var r caughtProgram
		if c.got != 0 && c.prog != nil {
			raw := unsafe.Slice((*unix.SockFilter)(unsafe.Pointer(c.prog)), int(c.len))
			r.prog, r.flags = append([]unix.SockFilter(nil), raw...), uint(c.flags)
		} else {
			r.err = errors.New("libcontainer loaded no seccomp program")
			if lerr != nil {
				r.err = fmt.Errorf("%w: %v", r.err, lerr)
			}
		}
		C.lodge_capture_free(c)
		done <- r
	}
	done := make(chan caughtProgram, 1)
	go capture(done)
	r := <-done
	return r.prog, r.flags, r.err
}

// caughtProgram is what serveCapture caught.
type caughtProgram struct {
	prog  []unix.SockFilter
	flags uint
	err   error
}

// captureFilter puts this thread (only) under a filter that notifies the
// returned listener of prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER) and
// seccomp(SECCOMP_SET_MODE_FILTER), and allows everything else.
func captureFilter() (int, error) {
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return -1, err
	}
	const (
		ldw   = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq   = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		ret   = unix.BPF_RET | unix.BPF_K
		offNr = 0
		offA0 = 16 // args[0], low half (little-endian)
	)
	prog := []unix.SockFilter{
		{Code: ldw, K: offNr},
		{Code: jeq, K: unix.SYS_PRCTL, Jt: 0, Jf: 2},
		{Code: ldw, K: offA0},
		{Code: jeq, K: unix.PR_SET_SECCOMP, Jt: 3, Jf: 4},
		{Code: jeq, K: unix.SYS_SECCOMP, Jt: 0, Jf: 3}, // A is still the number
		{Code: ldw, K: offA0},
		{Code: jeq, K: unix.SECCOMP_SET_MODE_FILTER, Jt: 0, Jf: 1},
		{Code: ret, K: unix.SECCOMP_RET_USER_NOTIF},
		{Code: ret, K: unix.SECCOMP_RET_ALLOW},
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	fd, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER,
		unix.SECCOMP_FILTER_FLAG_NEW_LISTENER, uintptr(unsafe.Pointer(&fprog)))
	goruntime.KeepAlive(prog)
	if errno != 0 {
		return -1, errno
	}
	return int(fd), nil
}
