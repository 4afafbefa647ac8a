package runtime

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
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
		caught := make(chan caughtProgram, 1)
		stop := make(chan struct{})
		go serveCapture(listener, caught, stop)
		_, lerr := seccomp.InitSeccomp(cfg)
		close(stop)
		var r caughtProgram
		select {
		case r = <-caught:
		default:
			r.err = errors.New("libcontainer loaded no seccomp program")
			if lerr != nil {
				r.err = fmt.Errorf("%w: %v", r.err, lerr)
			}
		}
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

// seccompNotif and seccompNotifResp are the kernel's struct seccomp_notif
// and struct seccomp_notif_resp (linux/seccomp.h), which x/sys lacks.
type seccompNotif struct {
	ID    uint64
	Pid   uint32
	Flags uint32
	Nr    int32
	Arch  uint32
	IP    uint64
	Args  [6]uint64
}

type seccompNotifResp struct {
	ID    uint64
	Val   int64
	Error int32
	Flags uint32
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

// serveCapture answers the listener's notifications until stop, then
// closes it: libseccomp's probes (a NULL program) get the EFAULT the
// kernel would give them; a load is refused, and the first one's program
// is sent on caught before its answer (so before the load returns). Every
// notification is answered, not only the first: a signal that interrupts
// the load makes the kernel withdraw its notification and the restarted
// call send another, which would otherwise wait forever.
func serveCapture(listener int, caught chan<- caughtProgram, stop <-chan struct{}) {
	defer unix.Close(listener)
	mem, merr := os.Open("/proc/self/mem")
	if merr == nil {
		defer mem.Close()
	}
	sent := false
	for {
		select {
		case <-stop:
			return
		default:
		}
		fds := []unix.PollFd{{Fd: int32(listener), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 50)
		if err == unix.EINTR || n == 0 {
			continue
		}
		if err != nil || fds[0].Revents&unix.POLLIN == 0 {
			return // no thread of the filter is left
		}
		var nt seccompNotif
		if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(listener), unix.SECCOMP_IOCTL_NOTIF_RECV, uintptr(unsafe.Pointer(&nt))); errno != 0 {
			continue // withdrawn (EINTR, ENOENT): the call comes again
		}
		resp := seccompNotifResp{ID: nt.ID, Error: -int32(unix.EFAULT)}
		if nt.Args[2] != 0 {
			resp.Error = -int32(unix.ECANCELED)
			if !sent {
				r := caughtProgram{err: merr}
				if merr == nil {
					if nt.Nr == unix.SYS_SECCOMP {
						r.flags = uint(nt.Args[1])
					}
					r.prog, r.err = readFprog(mem, nt.Args[2])
				}
				caught <- r
				sent = true
			}
		}
		// A failed answer is a call withdrawn: it comes again.
		_, _, _ = unix.Syscall(unix.SYS_IOCTL, uintptr(listener), unix.SECCOMP_IOCTL_NOTIF_SEND, uintptr(unsafe.Pointer(&resp)))
	}
}

// readFprog reads the struct sock_fprog at addr in this process.
func readFprog(mem *os.File, addr uint64) ([]unix.SockFilter, error) {
	var hdr [16]byte // unsigned short len; (padding); struct sock_filter *filter
	if _, err := mem.ReadAt(hdr[:], int64(addr)); err != nil {
		return nil, err
	}
	n := int(binary.NativeEndian.Uint16(hdr[0:]))
	at := binary.NativeEndian.Uint64(hdr[8:])
	if n == 0 || n > 4096 {
		return nil, errors.New("libcontainer's seccomp program has no or too many instructions")
	}
	raw := make([]byte, n*8)
	if _, err := mem.ReadAt(raw, int64(at)); err != nil {
		return nil, err
	}
	prog := make([]unix.SockFilter, n)
	for i := range prog {
		b := raw[i*8:]
		prog[i] = unix.SockFilter{Code: binary.NativeEndian.Uint16(b), Jt: b[2], Jf: b[3], K: binary.NativeEndian.Uint32(b[4:])}
	}
	return prog, nil
}
