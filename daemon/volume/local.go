package volume

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"

	"github.com/lodge-containers/lodge/errdefs"
)

// The local driver's options, and the side of the volume service that
// containers use: references, and where to mount a volume from.

// checkLocalOptions accepts what the local driver can make: nothing (a
// directory), a bind (type=none, o=bind, device=PATH) or a tmpfs
// (type=tmpfs, o=size=...,mode=...).
func checkLocalOptions(o map[string]string) error {
	if len(o) == 0 {
		return nil
	}
	for k := range o {
		switch k {
		case "type", "device", "o", "size":
		default:
			return errdefs.InvalidArgumentf("invalid option: %q", k)
		}
	}
	switch t := o["type"]; t {
	case "tmpfs":
		if _, err := tmpfsData(o); err != nil {
			return err
		}
		return nil
	case "none", "":
		if !hasOpt(o["o"], "bind") {
			return errdefs.InvalidArgumentf("local volume options: without a type, o must include bind (o=bind,device=PATH)")
		}
		dev := o["device"]
		if !filepath.IsAbs(dev) {
			return errdefs.InvalidArgumentf("local volume options: a bind needs an absolute device path, got %q", dev)
		}
		fi, err := os.Stat(dev)
		if err != nil {
			return errdefs.InvalidArgumentf("local volume options: bind device %s: %v", dev, err)
		}
		if !fi.IsDir() {
			return errdefs.InvalidArgumentf("local volume options: bind device %s is not a directory", dev)
		}
		return nil
	default:
		return errdefs.NotImplementedf("local volume type %q: lodge makes bind (type=none,o=bind) and tmpfs volumes; a user namespace cannot mount %s", t, t)
	}
}

func hasOpt(list, want string) bool {
	for _, o := range strings.Split(list, ",") {
		if o == want {
			return true
		}
	}
	return false
}

// tmpfsData is the mount data of a tmpfs volume: only the options tmpfs
// knows, so that o cannot smuggle in anything else.
func tmpfsData(o map[string]string) (string, error) {
	var out []string
	for _, opt := range strings.Split(o["o"], ",") {
		if opt == "" {
			continue
		}
		k, _, _ := strings.Cut(opt, "=")
		switch k {
		case "size", "mode", "uid", "gid", "nr_inodes", "nr_blocks":
			out = append(out, opt)
		case "nosuid", "nodev", "noexec", "ro", "rw":
		default:
			return "", errdefs.InvalidArgumentf("tmpfs volume option %q is not one lodge passes on", opt)
		}
	}
	if s := o["size"]; s != "" {
		out = append(out, "size="+s)
	}
	return strings.Join(out, ","), nil
}

// Acquire makes (when name is "", or unknown) and references a volume for
// container id, in one step, so that no removal slips in between. It
// returns the volume's name (an anonymous one's is made here).
func (v *Store) Acquire(name string, opts Options, id string) (string, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	opts.Name = name
	rec, err := v.createLocked(opts)
	if err != nil {
		return "", err
	}
	v.refLocked(rec.Name, id)
	return rec.Name, nil
}

// Ref records that container id uses the volume name (if it exists).
func (v *Store) Ref(name, id string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, ok := v.vols[name]; ok {
		v.refLocked(name, id)
	}
}

func (v *Store) refLocked(name, id string) {
	if v.users[name] == nil {
		v.users[name] = map[string]bool{}
	}
	v.users[name][id] = true
}

// Release drops container id's references; with removeAnonymous, the
// anonymous volumes among names that nobody else uses go too.
func (v *Store) Release(id string, names []string, removeAnonymous bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, n := range names {
		delete(v.users[n], id)
		if len(v.users[n]) == 0 {
			delete(v.users, n)
		}
		if rec, ok := v.vols[n]; ok && removeAnonymous && rec.anonymous() && len(v.users[n]) == 0 {
			if err := v.removeLocked(n, true); err != nil {
				v.log.Warn("anonymous volume not removed", "name", n, "err", err)
			}
		}
	}
}

// DataPath is where the volume's files are, without mounting anything: a
// stopped container's docker cp reaches them there.
func (v *Store) DataPath(name string) string {
	v.mu.Lock()
	defer v.mu.Unlock()
	if rec, ok := v.vols[name]; ok && rec.Options["device"] != "" && rec.Options["type"] != "tmpfs" {
		return rec.Options["device"]
	}
	return filepath.Join(v.dir(name), "_data")
}

// Source is where a container binds the volume from: its _data, a bind
// volume's device, or a tmpfs mounted on _data the first time it is used.
// fresh says whether the volume is still empty, for the copy-up.
func (v *Store) Source(name string) (src string, fresh bool, err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	rec, ok := v.vols[name]
	if !ok {
		return "", false, errdefs.NotFoundf("volume %s is gone", name)
	}
	data := filepath.Join(v.dir(name), "_data")
	switch rec.Options["type"] {
	case "tmpfs":
		if !isMountPoint(data) {
			opts, err := tmpfsData(rec.Options)
			if err != nil {
				return "", false, err
			}
			if err := unix.Mount("tmpfs", data, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
				return "", false, fmt.Errorf("mounting tmpfs volume %s: %w", name, err)
			}
		}
	case "", "none":
		if dev := rec.Options["device"]; dev != "" {
			if _, err := os.Stat(dev); err != nil {
				return "", false, errdefs.InvalidArgumentf("volume %s: bind device: %v", name, err)
			}
			return dev, false, nil
		}
	}
	return data, isEmptyDir(data), nil
}

func isEmptyDir(dir string) bool {
	f, err := os.Open(dir)
	if err != nil {
		return false
	}
	defer f.Close()
	names, _ := f.Readdirnames(1)
	return len(names) == 0
}

// isMountPoint reports whether path is on a different mount than its
// parent directory.
func isMountPoint(path string) bool {
	var a, b unix.Stat_t
	if unix.Lstat(path, &a) != nil || unix.Lstat(filepath.Dir(path), &b) != nil {
		return false
	}
	return a.Dev != b.Dev
}

// Subpath is the directory subpath of the volume directory vol, as
// Docker resolves it: symlinks inside the volume are followed while they
// stay in it, one that leads out is refused, and a subpath that is not
// there is NotFound with Docker's "cannot access path" message. The
// container cannot swap a component for a symlink between this check and
// the mount only while it is not running; a running user of the same
// volume can, as with an ordinary bind of a path it writes to.
func Subpath(vol, subpath string) (string, error) {
	if !filepath.IsLocal(subpath) {
		return "", errdefs.InvalidArgumentf("subpath must be a relative path within the volume")
	}
	p, err := securejoin.SecureJoin(vol, subpath)
	if err != nil {
		return "", err
	}
	if real, err := filepath.EvalSymlinks(filepath.Join(vol, subpath)); err == nil {
		base, _ := filepath.EvalSymlinks(vol)
		if rel, err := filepath.Rel(base, real); err != nil || !filepath.IsLocal(rel) && rel != "." {
			return "", errdefs.InvalidArgumentf("path concatenation escapes the base directory, base: %s, subpath: %s", vol, subpath)
		}
	}
	if _, err := os.Lstat(p); err != nil {
		return "", errdefs.NotFoundf("cannot access path %s: %v", p, err)
	}
	return p, nil
}
