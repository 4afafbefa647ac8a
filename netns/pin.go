package netns

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"

	"golang.org/x/sys/unix"
)

// Pin creates a new network namespace and keeps it alive as a bind mount
// on path, so that it outlives any process in it: a container joins it by
// path, and the bridge side is wired before the container's first
// instruction runs. The mount lives in the caller's mount namespace; Unpin
// removes it. The namespace is made on a thread of its own that exits
// afterwards, so no thread of the caller is left in it. A pin left on path
// (lodged killed between a pin and the record that names it) is unpinned
// first: path then holds a new, empty namespace.
func Pin(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	if err := mountPoint(path); err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: the goroutine's end takes its thread, now in
		// the new namespace, with it.
		goruntime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("new network namespace: %w", err)
			return
		}
		self := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		if err := unix.Mount(self, path, "", unix.MS_BIND, ""); err != nil {
			errc <- fmt.Errorf("pinning the network namespace: %w", err)
			return
		}
		errc <- nil
	}()
	if err := <-errc; err != nil {
		_ = os.Remove(path) // the pin's error is the one to report; a leftover path is pinned again next time
		return err
	}
	return nil
}

// Bind pins the namespace pinned at from on to as well, replacing a pin
// left there: the namespace then lives while either path holds it.
func Bind(from, to string) error {
	// A bind of a path that holds no namespace (a plain file) succeeds,
	// and only the container's start would fail, at setns: refused here,
	// the caller pins a namespace of its own.
	var st unix.Statfs_t
	if err := unix.Statfs(from, &st); err != nil {
		return fmt.Errorf("network namespace %s: %w", from, err)
	}
	if st.Type != unix.NSFS_MAGIC {
		return fmt.Errorf("%s holds no network namespace", from)
	}
	if err := mountPoint(to); err != nil {
		return err
	}
	if err := unix.Mount(from, to, "", unix.MS_BIND, ""); err != nil {
		_ = os.Remove(to) // the mount's error is the one to report
		return fmt.Errorf("pinning the network namespace on %s: %w", to, err)
	}
	return nil
}

// mountPoint makes the empty file a namespace is bound on, unpinning a pin
// left on path first.
func mountPoint(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o600)
	if errors.Is(err, os.ErrExist) {
		if err := Unpin(path); err != nil {
			return fmt.Errorf("a network namespace left on %s: %w", path, err)
		}
		f, err = os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o600)
	}
	if err != nil {
		return fmt.Errorf("network namespace file: %w", err)
	}
	return f.Close()
}

// Unpin unmounts and removes a namespace Pin made. The namespace ends when
// nothing else holds it. A missing path is not an error.
func Unpin(path string) error {
	err := unix.Unmount(path, unix.MNT_DETACH)
	if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unpinning %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
