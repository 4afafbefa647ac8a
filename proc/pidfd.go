package proc

import (
	"context"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// WaitPidfd blocks until the process behind the pidfd fd has ended (true)
// or ctx is done (false). The caller keeps fd, and closes it.
//
// It sleeps in the Go runtime's poller, as a socket read does: no thread
// and no timer per process. A wait that looked every half second woke the
// daemon twice a second for its keeper and twice more for each running
// container it had adopted, at rest. A pidfd has been pollable since
// pidfd_open(2) came (Linux 5.3), so there is no polling fallback.
func WaitPidfd(ctx context.Context, fd int) (bool, error) {
	if ctx.Err() != nil {
		return false, nil
	}
	dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return false, err
	}
	// Non-blocking, os.NewFile hands it to the poller. On a pidfd the
	// flag changes only what waitid(2) does, which nothing here calls.
	if err := unix.SetNonblock(dup, true); err != nil {
		unix.Close(dup)
		return false, err
	}
	f := os.NewFile(uintptr(dup), "pidfd")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return false, err
	}
	// ctx's end gives the read a deadline in the past, which ends the
	// wait. Registered after the Close above, so it is undone first.
	defer context.AfterFunc(ctx, func() { _ = f.SetReadDeadline(time.Unix(1, 0)) })()
	ended := false
	err = rc.Read(func(uintptr) bool {
		// Readable once the process has ended.
		pfd := []unix.PollFd{{Fd: int32(dup), Events: unix.POLLIN}}
		n, _ := unix.Poll(pfd, 0)
		ended = n > 0
		return ended
	})
	switch {
	case ended:
		return true, nil
	case ctx.Err() != nil:
		return false, nil
	}
	return false, err
}
