// Package paths decides where lodge keeps its socket, runtime state, data and
// configuration for the current user, following DESIGN.md. It owns the
// checks that keep another user from planting those directories; it does
// not create data directories beyond the runtime dir.
package paths

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// Env is the part of the environment paths reads. Tests fill it in; the
// commands use FromOS.
type Env struct {
	UID            int
	Home           string
	XDGRuntimeDir  string
	XDGDataHome    string
	XDGConfigHome  string
	TmpDir         string // "/tmp" unless a test says otherwise
	LodgeHost      string // LODGE_HOST, for the CLI
	ExplicitRunDir string // LODGE_RUNTIME_DIR, used by tests and by lodged's own children
}

// EnvRuntimeDir names the runtime dir explicitly. lodged sets it for its
// own stages, which run as uid 0 inside the user namespace and so cannot
// compute /tmp/lodge-$UID themselves; tests set it too.
const EnvRuntimeDir = "LODGE_RUNTIME_DIR"

// FromOS reads Env from the process environment.
func FromOS() Env {
	home, _ := os.UserHomeDir()
	return Env{
		UID:            os.Getuid(),
		Home:           home,
		XDGRuntimeDir:  os.Getenv("XDG_RUNTIME_DIR"),
		XDGDataHome:    os.Getenv("XDG_DATA_HOME"),
		XDGConfigHome:  os.Getenv("XDG_CONFIG_HOME"),
		TmpDir:         "/tmp",
		LodgeHost:      os.Getenv("LODGE_HOST"),
		ExplicitRunDir: os.Getenv(EnvRuntimeDir),
	}
}

// RuntimeDir is where the socket and runtime state live:
// $XDG_RUNTIME_DIR/lodge, or /tmp/lodge-$UID when XDG_RUNTIME_DIR is unset
// (ssh without logind, su). It does not create or check anything; Ensure
// does.
func (e Env) RuntimeDir() string {
	if e.ExplicitRunDir != "" {
		return e.ExplicitRunDir
	}
	if e.XDGRuntimeDir != "" {
		return filepath.Join(e.XDGRuntimeDir, "lodge")
	}
	tmp := e.TmpDir
	if tmp == "" {
		tmp = "/tmp"
	}
	return filepath.Join(tmp, "lodge-"+strconv.Itoa(e.UID))
}

// Socket is the default API socket path.
func (e Env) Socket() string { return filepath.Join(e.RuntimeDir(), "lodge.sock") }

// UplinkNS is the network namespace of lodged's bridges (and its uplink),
// mounted there in lodged's mount namespace: an empty file outside it.
func UplinkNS(runDir string) string { return filepath.Join(runDir, "uplink.netns") }

// CRISocket is where lodged serves the Kubernetes Container Runtime
// Interface (gRPC), beside the Docker API's socket.
func (e Env) CRISocket() string { return filepath.Join(e.RuntimeDir(), "cri.sock") }

// Host is the address the CLI dials when --host is not given: LODGE_HOST,
// else the default socket.
func (e Env) Host() string {
	if e.LodgeHost != "" {
		return e.LodgeHost
	}
	return "unix://" + e.Socket()
}

// DataRoot is where images, containers and volumes live:
// $XDG_DATA_HOME/lodge, else ~/.local/share/lodge.
func (e Env) DataRoot() string {
	if e.XDGDataHome != "" {
		return filepath.Join(e.XDGDataHome, "lodge")
	}
	return filepath.Join(e.Home, ".local", "share", "lodge")
}

// ConfigFile is the daemon's configuration file, in Docker's daemon.json format.
func (e Env) ConfigFile() string {
	if e.XDGConfigHome != "" {
		return filepath.Join(e.XDGConfigHome, "lodge", "daemon.json")
	}
	return filepath.Join(e.Home, ".config", "lodge", "daemon.json")
}

// ErrUnsafeDir is returned by EnsurePrivateDir when a directory exists but
// is not a real directory owned by the user with mode 0700.
var ErrUnsafeDir = errors.New("unsafe directory")

// EnsurePrivateDir creates dir with mode 0700 if it is missing (parents
// 0700 too), and refuses one that exists but is a symlink, is not a
// directory, is not owned by uid, or is open to group or others: in a shared
// /tmp another user could have created it first to watch or hijack the
// socket.
func EnsurePrivateDir(dir string, uid int) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return err
	}
	err := os.Mkdir(dir, 0o700)
	if err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	return CheckPrivateDir(dir, uid)
}

// CheckPrivateDir refuses dir unless it is a real directory (no symlink)
// owned by uid with mode 0700. It creates nothing: the CLI checks the
// runtime dir this way before it reads a pid file from it.
func CheckPrivateDir(dir string, uid int) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if fi.Mode()&os.ModeSymlink != 0 || !fi.IsDir() {
		return fmt.Errorf("%s is not a directory (a symlink or file is in its place): %w", dir, ErrUnsafeDir)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("%s: cannot read owner: %w", dir, ErrUnsafeDir)
	}
	if int(st.Uid) != uid {
		return fmt.Errorf("%s is owned by uid %d, not by you (uid %d): %w", dir, st.Uid, uid, ErrUnsafeDir)
	}
	if fi.Mode().Perm() != 0o700 {
		return fmt.Errorf("%s has mode %o, want 0700: %w", dir, fi.Mode().Perm(), ErrUnsafeDir)
	}
	return nil
}

// CheckOwnedPath refuses a directory or file that someone other than uid
// could change or swap: p itself (followed if a symlink the user owns)
// must be owned by uid and not writable by group or others, and every
// directory above it must belong to uid or root and must not let others
// rename its entries (writable by others without the sticky bit, or by a
// group that is not gid). A missing p is checked from its first existing
// parent, where lodged will create it. The data root and the config file
// are checked this way: a data root another user owns would let them swap
// volumes/ and read what containers write.
func CheckOwnedPath(p string, uid, gid int) error {
	abs, err := filepath.Abs(p)
	if err != nil {
		return err
	}
	fi, err := os.Lstat(abs)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return checkAncestors(abs, uid, gid)
	case err != nil:
		return err
	}
	if fi.Mode()&os.ModeSymlink != 0 {
		if err := ownedBy(abs, fi, uid); err != nil {
			return err
		}
		target, err := filepath.EvalSymlinks(abs)
		if err != nil {
			return fmt.Errorf("%s: %w", abs, err)
		}
		if fi, err = os.Lstat(target); err != nil {
			return err
		}
		if err := checkAncestors(abs, uid, gid); err != nil {
			return err
		}
		abs = target
	}
	if err := ownedBy(abs, fi, uid); err != nil {
		return err
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("%s has mode %o: others can write to it; chmod go-w %s: %w", abs, fi.Mode().Perm(), abs, ErrUnsafeDir)
	}
	return checkAncestors(abs, uid, gid)
}

func ownedBy(p string, fi os.FileInfo, uid int) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("%s: cannot read owner: %w", p, ErrUnsafeDir)
	}
	if int(st.Uid) != uid {
		return fmt.Errorf("%s is owned by uid %d, not by you (uid %d): %w", p, st.Uid, uid, ErrUnsafeDir)
	}
	return nil
}

// checkAncestors walks from p's parent to / (the existing ones only).
func checkAncestors(p string, uid, gid int) error {
	for dir := filepath.Dir(p); ; dir = filepath.Dir(dir) {
		fi, err := os.Stat(dir)
		if err == nil {
			st, ok := fi.Sys().(*syscall.Stat_t)
			if !ok {
				return fmt.Errorf("%s: cannot read owner: %w", dir, ErrUnsafeDir)
			}
			perm := fi.Mode().Perm()
			sticky := fi.Mode()&os.ModeSticky != 0
			switch {
			case int(st.Uid) != uid && st.Uid != 0:
				return fmt.Errorf("%s belongs to uid %d, who could replace what lodge keeps below it: %w", dir, st.Uid, ErrUnsafeDir)
			case perm&0o002 != 0 && !sticky:
				return fmt.Errorf("%s is writable by everyone: %w", dir, ErrUnsafeDir)
			case perm&0o020 != 0 && !sticky && int(st.Gid) != gid:
				return fmt.Errorf("%s is writable by group %d: %w", dir, st.Gid, ErrUnsafeDir)
			}
		} else if !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if dir == "/" || dir == "." {
			return nil
		}
	}
}
