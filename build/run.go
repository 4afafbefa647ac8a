package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/lodge-containers/lodge/errdefs"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"golang.org/x/sys/unix"
)

// runError is a RUN whose command exited non-zero, worded as Docker's
// classic builder words it. errors.As finds the *ExitError inside.
type runError struct {
	cmd  string
	exit *ExitError
}

func (e *runError) Error() string {
	return fmt.Sprintf("The command '%s' returned a non-zero code: %d", e.cmd, e.exit.Code)
}
func (e *runError) Unwrap() error { return e.exit }

// runMounts is what a RUN's --mount flags need while it runs.
type runMounts struct {
	mounts  []Mount
	keys    []string // what the mounts add to the step's cache key
	locks   []string // cache dirs to hold for sharing=locked|private
	cleanup []func()
}

func (m *runMounts) release() {
	for i := len(m.cleanup) - 1; i >= 0; i-- {
		m.cleanup[i]()
	}
}

func (s *stageRun) run(ctx context.Context, c *instructions.RunCommand, out *stepOut) error {
	args := append([]string(nil), c.CmdLine...)
	rm := &runMounts{}
	defer rm.release()

	if len(c.Files) > 0 {
		var err error
		if args, err = s.heredocArgs(c, rm); err != nil {
			return err
		}
	}
	if c.PrependShell {
		args = append(append([]string(nil), s.shell()...), strings.Join(args, " "))
	}
	if len(args) == 0 {
		return errdefs.InvalidArgumentf("RUN needs a command")
	}

	network := instructions.GetNetwork(c)
	if network == "" || network == instructions.NetworkDefault {
		network = s.opts.Network
	}
	if network == "" {
		network = "default"
	}

	argEnv := s.argEnv()
	createdBy := strings.Join(args, " ")
	if len(argEnv) > 0 {
		createdBy = fmt.Sprintf("|%d %s %s", len(argEnv), strings.Join(argEnv, " "), createdBy)
	}
	env := append(append([]string(nil), s.cfg.Config.Env...), argEnv...)
	// Proxy args need no ARG; they are in the environment but, as in
	// Docker, neither in the history nor in the cache key.
	for _, k := range sortedKeys(s.opts.BuildArgs) {
		if v := s.opts.BuildArgs[k]; v != nil && isPredefinedArg(k) && !hasEnv(env, k) {
			env = append(env, k+"="+*v)
		}
	}

	if err := s.prepareMounts(ctx, c, rm, out); err != nil {
		return err
	}
	key := chainKey(s.key, append([]string{"run", createdBy, network}, rm.keys...)...)

	return s.layer(ctx, out, key, createdBy, func(ctx context.Context, cfg dockerspec.DockerOCIImage) (Image, error) {
		for _, dir := range rm.locks {
			unlock, err := lockDir(dir)
			if err != nil {
				return Image{}, err
			}
			defer unlock()
		}
		img, err := s.b.backend.Run(ctx, RunRequest{
			Parent:     s.img,
			Config:     cfg,
			Cmd:        args,
			Env:        env,
			Network:    network,
			ExtraHosts: s.opts.ExtraHosts,
			Mounts:     rm.mounts,
			Out:        out,
		})
		var exit *ExitError
		if errors.As(err, &exit) {
			return Image{}, &runError{cmd: strings.Join(args, " "), exit: exit}
		}
		return img, err
	})
}

func hasEnv(env []string, key string) bool {
	for _, e := range env {
		if k, _, _ := strings.Cut(e, "="); k == key {
			return true
		}
	}
	return false
}

// heredocArgs turns RUN <<EOF into a command, as buildkit does: a lone
// heredoc with a #! line runs as a script file (mounted at /dev/pipes), a
// lone heredoc without one runs in the shell, anything else goes to the
// shell whole.
func (s *stageRun) heredocArgs(c *instructions.RunCommand, rm *runMounts) ([]string, error) {
	args := c.CmdLine
	if len(args) != 1 || !c.PrependShell {
		return nil, errdefs.InvalidArgumentf("parsing produced an invalid run command: %v", args)
	}
	if hd := parser.MustParseHeredoc(args[0]); hd != nil {
		f := c.Files[0]
		data := f.Data
		if f.Chomp {
			data = parser.ChompHeredocContent(data)
		}
		if !strings.HasPrefix(data, "#!") {
			return []string{data}, nil
		}
		dir, err := os.MkdirTemp(s.work, "heredoc-")
		if err != nil {
			return nil, err
		}
		name := path.Base("/" + f.Name)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o755); err != nil {
			return nil, err
		}
		if err := os.Chmod(dir, 0o755); err != nil {
			return nil, err
		}
		rm.mounts = append(rm.mounts, Mount{Type: "bind", Source: dir, Target: "/dev/pipes", ReadOnly: true})
		sum := sha256.Sum256([]byte(data))
		rm.keys = append(rm.keys, "heredoc:"+hex.EncodeToString(sum[:]))
		return []string{"/dev/pipes/" + name}, nil
	}
	full := args[0]
	for _, f := range c.Files {
		full += "\n" + f.Data + f.Name
	}
	return []string{full}, nil
}

// prepareMounts resolves RUN --mount flags to host paths.
func (s *stageRun) prepareMounts(ctx context.Context, c *instructions.RunCommand, rm *runMounts, out io.Writer) error {
	for _, m := range instructions.GetMounts(c) {
		target := m.Target
		if target != "" && !path.IsAbs(target) {
			wd := s.cfg.Config.WorkingDir
			if wd == "" {
				wd = "/"
			}
			target = path.Join(wd, target)
		}
		if target == "" && m.Type != instructions.MountTypeSecret && m.Type != instructions.MountTypeSSH {
			return errdefs.InvalidArgumentf("--mount=type=%s needs a target", m.Type)
		}
		switch m.Type {
		case instructions.MountTypeTmpfs:
			rm.mounts = append(rm.mounts, Mount{Type: "tmpfs", Target: target})
			rm.keys = append(rm.keys, "tmpfs:"+target)
		case instructions.MountTypeCache:
			if m.From != "" {
				return errdefs.NotImplementedf("--mount=type=cache,from= is not supported")
			}
			dir, err := s.cacheDir(m, target)
			if err != nil {
				return err
			}
			if m.CacheSharing == instructions.MountSharingLocked || m.CacheSharing == instructions.MountSharingPrivate {
				rm.locks = append(rm.locks, dir)
			}
			rm.mounts = append(rm.mounts, Mount{Type: "bind", Source: dir, Target: target, ReadOnly: m.ReadOnly})
			// The cache's content never counts: it is a cache.
			rm.keys = append(rm.keys, fmt.Sprintf("cache:%s:%s:%v", target, m.CacheID, m.ReadOnly))
		case instructions.MountTypeBind:
			if err := s.bindMount(ctx, m, target, rm, out); err != nil {
				return err
			}
		case instructions.MountTypeSecret, instructions.MountTypeSSH:
			if m.Required {
				return errdefs.NotImplementedf("--mount=type=%s is not supported", m.Type)
			}
			// Not required and lodge has none to give: mounted as absent,
			// as buildkit does for a missing secret.
		default:
			return errdefs.NotImplementedf("--mount=type=%s is not supported", m.Type)
		}
	}
	return nil
}

// cacheDir is a cache mount's directory, kept between builds under
// <dir>/cache, made with the mode and owner the flags ask for.
func (s *stageRun) cacheDir(m *instructions.Mount, target string) (string, error) {
	id := m.CacheID
	if id == "" {
		id = target
	}
	sum := sha256.Sum256([]byte(id))
	dir := filepath.Join(s.b.dir, "cache", hex.EncodeToString(sum[:16]))
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return "", err
	}
	err := os.Mkdir(dir, 0o755)
	if errors.Is(err, fs.ErrExist) {
		return dir, nil
	}
	if err != nil {
		return "", err
	}
	mode := fs.FileMode(0o755)
	if m.Mode != nil {
		mode = fs.FileMode(*m.Mode) & fs.ModePerm
	}
	if err := os.Chmod(dir, mode); err != nil {
		return "", err
	}
	if m.UID != nil || m.GID != nil {
		uid, gid := 0, 0
		if m.UID != nil {
			uid = int(*m.UID)
		}
		if m.GID != nil {
			gid = int(*m.GID)
		}
		// Best effort: an id outside lodged's user namespace map cannot
		// own anything, and the cache is still usable by root.
		_ = os.Lchown(dir, uid, gid)
	}
	return dir, nil
}

// lockDir holds an exclusive lock on a cache dir (sharing=locked, and
// private, which lodge treats alike) until the returned func is called.
func lockDir(dir string) (func(), error) {
	f, err := os.OpenFile(dir+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}

// bindMount resolves a bind mount from the context or from a stage or
// image. Its source's content is part of the step's key. A rw mount gets
// a throwaway copy, so the context and images stay as they were.
func (s *stageRun) bindMount(ctx context.Context, m *instructions.Mount, target string, rm *runMounts, out io.Writer) error {
	root, fromContext, fromID, release, err := s.copyRoot(ctx, m.From, out)
	if err != nil {
		return err
	}
	rm.cleanup = append(rm.cleanup, release)
	srcPath := strings.TrimPrefix(path.Clean("/"+m.Source), "/")
	if srcPath == "" {
		srcPath = "."
	}
	host, err := securejoin.SecureJoin(root, srcPath)
	if err != nil {
		return err
	}
	fi, err := os.Lstat(host)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return errdefs.NotFoundf("--mount source %s not found", m.Source)
		}
		return err
	}
	rel, _ := filepath.Rel(root, host)
	h, err := hashSource(s.bc, copySource{root: root, rel: filepath.ToSlash(rel), fi: fi, context: fromContext})
	if err != nil {
		return err
	}
	rm.keys = append(rm.keys, fmt.Sprintf("bind:%s:%s:%s:%v", target, fromID, h, m.ReadOnly))
	if !m.ReadOnly {
		tmp, err := os.MkdirTemp(s.work, "bind-")
		if err != nil {
			return err
		}
		dst := filepath.Join(tmp, "src")
		if err := copyTree(host, dst); err != nil {
			return err
		}
		host = dst
	}
	rm.mounts = append(rm.mounts, Mount{Type: "bind", Source: host, Target: target, ReadOnly: m.ReadOnly})
	return nil
}

// copyTree copies src to dst, symlinks as symlinks.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.Mkdir(target, fi.Mode().Perm()|0o700)
		case fi.Mode()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case fi.Mode().IsRegular():
			in, err := os.Open(p)
			if err != nil {
				return err
			}
			defer in.Close()
			outF, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fi.Mode().Perm()|0o600)
			if err != nil {
				return err
			}
			_, err = io.Copy(outF, in)
			if cerr := outF.Close(); err == nil {
				err = cerr
			}
			return err
		}
		return nil
	})
}
