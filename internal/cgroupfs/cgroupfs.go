package cgroupfs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/lodge-containers/lodge/errdefs"
)

// Procs lists the processes in the cgroup at dir, as pids of the caller's
// pid namespace (0 for those outside it).
func Procs(dir string) ([]int, error) {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		if n, err := strconv.Atoi(f); err == nil {
			pids = append(pids, n)
		}
	}
	return pids, nil
}

// Kill kills every process in the cgroup at dir and its descendants, at
// once (cgroup.kill), so none can fork its way out. Kernels before 5.14
// have no cgroup.kill: their processes get SIGKILL one by one, until none
// is left.
func Kill(ctx context.Context, dir string) error {
	err := WriteFile(dir, "cgroup.kill", "1")
	if err == nil || errors.Is(err, os.ErrNotExist) && !Exists(dir) {
		return nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for {
		pids, err := Procs(dir)
		if err != nil || len(pids) == 0 {
			return nil
		}
		for _, p := range pids {
			if p > 0 {
				_ = syscall.Kill(p, syscall.SIGKILL) // one gone meanwhile is the point; the loop looks again
			}
		}
		if err := sleep(ctx, 10*time.Millisecond); err != nil {
			return err
		}
	}
}

// Exists reports whether dir is a directory (a cgroup that is there).
func Exists(dir string) bool {
	fi, err := os.Stat(dir)
	return err == nil && fi.IsDir()
}

// Freeze freezes (or thaws) the cgroup at dir and waits until the kernel
// says it is done (cgroup.events frozen), or ctx ends. A machine without
// the v2 freezer is errdefs.ErrNotImplemented.
func Freeze(ctx context.Context, dir string, frozen bool) error {
	v := "0"
	if frozen {
		v = "1"
	}
	if err := WriteFile(dir, "cgroup.freeze", v); err != nil {
		if errors.Is(err, os.ErrNotExist) && Exists(dir) {
			return errdefs.NotImplementedf("this kernel has no cgroup v2 freezer (cgroup.freeze, Linux 5.2)")
		}
		return err
	}
	for {
		ev, err := ReadKeyed(filepath.Join(dir, "cgroup.events"))
		if err != nil {
			return err
		}
		if (ev["frozen"] == 1) == frozen {
			return nil
		}
		if err := sleep(ctx, 2*time.Millisecond); err != nil {
			return fmt.Errorf("waiting for the cgroup to be frozen=%s: %w", v, err)
		}
	}
}

// Frozen reports whether the cgroup at dir is frozen.
func Frozen(dir string) (bool, error) {
	ev, err := ReadKeyed(filepath.Join(dir, "cgroup.events"))
	return ev["frozen"] == 1, err
}

// Remove removes the cgroup at dir once its processes are gone, waiting
// for them up to ctx's end. A cgroup that is already gone is no error.
func Remove(ctx context.Context, dir string) error {
	for {
		err := os.Remove(dir)
		if err == nil || errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if !errors.Is(err, syscall.EBUSY) {
			return err
		}
		if err := sleep(ctx, 5*time.Millisecond); err != nil {
			return fmt.Errorf("removing %s: still busy: %w", dir, err)
		}
	}
}

// OOMKills reads how many processes the kernel's OOM killer took from the
// cgroup at dir (memory.events oom_kill); 0 without the memory controller.
func OOMKills(dir string) uint64 {
	ev, _ := ReadKeyed(filepath.Join(dir, "memory.events"))
	return ev["oom_kill"]
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// WriteFile writes one value to a cgroup interface file. The kernel's
// errno is kept (errors.Is works) and the file named.
func WriteFile(dir, name, value string) error {
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %q to %s: %w", value, filepath.Join(dir, name), err)
	}
	return nil
}

// ReadKeyed reads a flat-keyed file ("key value" lines).
func ReadKeyed(path string) (map[string]uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m := make(map[string]uint64, 16)
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		k, v, ok := bytes.Cut(line, []byte{' '})
		if !ok {
			continue
		}
		if n, err := strconv.ParseUint(string(v), 10, 64); err == nil {
			m[string(k)] = n
		}
	}
	return m, nil
}
