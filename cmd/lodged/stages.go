package main

import (
	"context"
	"encoding/binary"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lodge-containers/lodge/proc"
	"github.com/lodge-containers/lodge/userns"
)

// How lodged's stages watch each other (issue 16):
//
//   - host-side lodged (rootlesskit's parent) and rootlesskit's child: each
//     takes the other along (parent-death signal; the parent ends when its
//     child does). The keeper watches both and, when either dies, ends the
//     other and takes over their work from inside the namespaces: the
//     uplink, the port driver, rootlesskit's API socket. The daemon sees
//     the API socket change and publishes the running containers' ports
//     again.
//   - the keeper: the daemon watches it (a pidfd) and starts a new one in
//     the same namespaces, which takes over the host side's work as above
//     (the old host side ends when its child does).
//   - the daemon: the keeper reaps it and starts the next one in the same
//     namespaces when asked (lodge daemon start, autostart).
//
// The namespaces themselves are never made again while anything runs in
// them, so exec, ports and the uplink of running containers keep working.

// superviseKeeper watches the keeper the daemon runs under and, when it
// dies, starts a new one in the same namespaces (this process is in them)
// and watches that one instead. It returns when ctx ends.
func superviseKeeper(ctx context.Context, log *slog.Logger, runDir string) {
	pid := os.Getppid()
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil || os.Getppid() != pid {
		log.Warn("cannot watch the namespace keeper", "err", err)
		return
	}
	for {
		if ended, _ := proc.WaitPidfd(ctx, fd); !ended {
			unix.Close(fd)
			return
		}
		unix.Close(fd)
		log.Warn("the namespace keeper died; starting a new one in the same namespaces", "pid", pid)
		cmd, err := userns.StartAdoptKeeper(filepath.Join(runDir, "keeper.log"))
		for err != nil {
			log.Error("starting a namespace keeper", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			cmd, err = userns.StartAdoptKeeper(filepath.Join(runDir, "keeper.log"))
		}
		// Reaped here while this daemon lives; why it ended is in
		// keeper.log, and its end shows through the pidfd below.
		go func() { _ = cmd.Wait() }()
		pid = cmd.Process.Pid
		if fd, err = unix.PidfdOpen(pid, 0); err != nil {
			return
		}
	}
}

// republishOnNewDriver publishes the running containers' ports again
// whenever rootlesskit's API socket is made anew: a keeper took over the
// port driver, which starts empty. A failure (the first request may meet
// a connection to the dead driver) is tried again.
//
// Between changes it sleeps on an inotify watch of the state directory;
// it looks every half second only while a republish is being retried, or
// where inotify cannot watch the directory.
func republishOnNewDriver(ctx context.Context, log *slog.Logger, republish func(context.Context) error) {
	dir := userns.StateDir()
	sock := filepath.Join(dir, "api.sock")
	changed := watchCreates(ctx, dir)
	// A new socket may get the old one's inode number (ext4 reuses
	// them): its change time tells it apart.
	type id struct {
		ino  uint64
		ctim unix.Timespec
	}
	ino := func() id {
		var st unix.Stat_t
		if unix.Stat(sock, &st) != nil {
			return id{}
		}
		return id{st.Ino, st.Ctim}
	}
	// Once at start too: a driver made while this daemon started up
	// may have missed what it restored.
	last, pending, tries := ino(), true, 0
	for {
		var tick <-chan time.Time
		if pending || changed == nil {
			tick = time.After(500 * time.Millisecond)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick:
		case _, ok := <-changed:
			if !ok {
				changed = nil // the watch ended: look every half second
			}
		}
		if now := ino(); now != (id{}) && now != last {
			last, pending, tries = now, true, 0
			log.Info("the port driver was started again; publishing running containers' ports")
		}
		if !pending {
			continue
		}
		err := republish(ctx)
		tries++
		if err == nil || tries >= 20 {
			pending = false
		}
		if err != nil && !pending {
			log.Warn("publishing running containers' ports again", "err", err)
		}
	}
}

// watchCreates sends on the channel it returns whenever an entry is made
// or moved into dir, and closes it when the watch ends (dir removed, an
// error, ctx done). It returns nil where inotify cannot watch dir.
func watchCreates(ctx context.Context, dir string) chan struct{} {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil
	}
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_CREATE|unix.IN_MOVED_TO); err != nil {
		unix.Close(fd)
		return nil
	}
	// Non-blocking: its reads sleep in the runtime's poller.
	f := os.NewFile(uintptr(fd), "inotify")
	ch := make(chan struct{}, 1)
	stop := context.AfterFunc(ctx, func() { f.Close() })
	go func() {
		defer close(ch)
		defer stop()
		defer f.Close()
		buf := make([]byte, 4096)
		for {
			n, err := f.Read(buf)
			if err != nil {
				return
			}
			for off := 0; off+unix.SizeofInotifyEvent <= n; {
				// struct inotify_event: wd, mask, cookie, len, name.
				mask := binary.NativeEndian.Uint32(buf[off+4:])
				if mask&unix.IN_IGNORED != 0 {
					return // dir is gone, and the watch with it
				}
				off += unix.SizeofInotifyEvent + int(binary.NativeEndian.Uint32(buf[off+12:]))
			}
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}()
	return ch
}
