package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"

	"github.com/lodge-containers/lodge/build"
	"github.com/lodge-containers/lodge/errdefs"
	"github.com/lodge-containers/lodge/image"
	"github.com/lodge-containers/lodge/rootdir"
	"github.com/lodge-containers/lodge/shim"
)

// BuildBackend is what a Dockerfile build asks of lodged: base images
// from the image service, RUN steps in real containers (the same user
// namespace, seccomp profile, capabilities, network and cgroup as any
// other), COPY layers unpacked on a scratch filesystem, and images made of
// the results. It is safe for concurrent use.
type BuildBackend struct {
	Images     *Images
	Containers *Containers
	// ScratchDir notes the scratch filesystems Apply has made, one empty
	// file each, so that Recover can remove the ones a crash left.
	ScratchDir string
	// TmpDir holds the empty directories Mount gives for images with no
	// layers.
	TmpDir string
}

var _ build.Backend = (*BuildBackend)(nil)

// Base resolves ref, pulling it when asked to or when it is not here.
func (b *BuildBackend) Base(ctx context.Context, ref string, pull bool, out io.Writer) (build.Image, error) {
	if ref == "scratch" {
		return build.Image{}, nil
	}
	if !pull {
		if img, err := b.image(ctx, ref); err == nil || !errors.Is(err, errdefs.ErrNotFound) {
			return img, err
		}
	}
	id, err := b.Images.Pull(ctx, ref, "", nil, image.TextProgress(out))
	if err != nil {
		return build.Image{}, fmt.Errorf("pulling %s: %w", ref, err)
	}
	return b.image(ctx, id)
}

// Lookup finds an image by ID.
func (b *BuildBackend) Lookup(ctx context.Context, id string) (build.Image, error) {
	return b.image(ctx, id)
}

func (b *BuildBackend) image(ctx context.Context, ref string) (build.Image, error) {
	id, cfg, err := b.Images.Resolve(ctx, ref)
	if err != nil {
		return build.Image{}, err
	}
	return build.Image{ID: strings.TrimPrefix(id, "sha256:"), Config: *cfg}, nil
}

// Run runs one RUN step in a container of its own and makes an image of
// what it changed. The container goes whatever happens: a failure, a
// cancelled build (it is killed), or success.
func (b *BuildBackend) Run(ctx context.Context, req build.RunRequest) (build.Image, error) {
	if req.Parent.ID == "" {
		return build.Image{}, errdefs.InvalidArgumentf("cannot RUN on scratch: the image has no files, no shell")
	}
	s := b.Containers
	lr, ok := s.Rootfs.(LayerReader)
	if !ok {
		return build.Image{}, errdefs.NotImplementedf("this storage cannot make a layer of a RUN step")
	}
	cfg, hc, err := runConfig(req)
	if err != nil {
		return build.Image{}, err
	}
	created, err := s.create(ctx, "", cfg, hc, nil, true)
	if err != nil {
		return build.Image{}, err
	}
	id := created.ID
	defer func() {
		// Not the build's context: a cancelled build's container must go
		// too, killed first.
		rctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := s.Remove(rctx, id, RemoveOptions{Force: true, Volumes: true}); err != nil {
			s.Log.Warn("removing a build step's container", "id", id, "err", err)
		}
	}()
	out := req.Out
	if out == nil {
		out = io.Discard
	}
	// Attach and wait are registered before the start: a quick command
	// could otherwise end before anyone listened.
	connect, err := s.AttachFor(id, AttachOptions{Stdout: true, Stderr: true, Stream: true})
	if err != nil {
		return build.Image{}, err
	}
	wait, err := s.lifecycle.WaitFor(id, container.WaitConditionNextExit)
	if err != nil {
		_ = connect(ctx, nil) // only to release the attach; err is the one to return
		return build.Image{}, err
	}
	pr, pw := io.Pipe()
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		unframe(out, pr)
	}()
	attached := make(chan struct{})
	go func() {
		defer close(attached)
		// The step's output ends with the attach, however it ends; the
		// step's result comes from wait.
		_ = connect(ctx, stdoutOnly{pw})
		_ = pw.Close() // a pipe's Close never fails
	}()
	if err := s.lifecycle.Start(ctx, id); err != nil {
		pw.CloseWithError(err)
		<-copied
		return build.Image{}, err
	}
	res, err := wait(ctx)
	if err != nil {
		pw.CloseWithError(err)
		<-copied
		return build.Image{}, err // cancelled: the deferred removal kills it
	}
	// Output still in flight is the step's: wait for its end, a while.
	select {
	case <-attached:
	case <-time.After(5 * time.Second):
		_ = pw.Close() // a pipe's Close never fails
	}
	<-copied
	if res.StatusCode != 0 {
		return build.Image{}, &build.ExitError{Code: int(res.StatusCode)}
	}
	diff, err := containerLayer(lr, id, true)
	if err != nil {
		return build.Image{}, err
	}
	defer diff.Close()
	newID, err := b.Images.PutImage(ctx, req.Parent.ID, diff, req.Config)
	if err != nil {
		return build.Image{}, err
	}
	return b.image(ctx, newID)
}

// runConfig is a RUN step's container: the step's command and no
// entrypoint, its user, directory and environment, its network, hosts
// and mounts, and no log kept beyond the build's own output.
func runConfig(req build.RunRequest) (*container.Config, *container.HostConfig, error) {
	cfg := &container.Config{
		Image: "sha256:" + req.Parent.ID, Cmd: req.Cmd, Entrypoint: []string{},
		Env: req.Env, User: req.Config.Config.User, WorkingDir: req.Config.Config.WorkingDir,
	}
	hc := &container.HostConfig{ExtraHosts: req.ExtraHosts}
	switch req.Network {
	case "", "default", "bridge":
		hc.NetworkMode = "bridge"
	case "none", "host":
		hc.NetworkMode = container.NetworkMode(req.Network)
	default:
		return nil, nil, errdefs.InvalidArgumentf("network mode %q for RUN: lodge builds with default (bridge), none or host", req.Network)
	}
	for _, m := range req.Mounts {
		switch m.Type {
		case "bind":
			hc.Mounts = append(hc.Mounts, mount.Mount{Type: mount.TypeBind, Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly})
		case "tmpfs":
			hc.Mounts = append(hc.Mounts, mount.Mount{Type: mount.TypeTmpfs, Target: m.Target})
		default:
			return nil, nil, errdefs.InvalidArgumentf("RUN --mount type %q: lodge mounts bind and tmpfs", m.Type)
		}
	}
	return cfg, hc, nil
}

// stdoutOnly is an attach client that sends nothing to the container.
type stdoutOnly struct{ io.Writer }

func (stdoutOnly) Read([]byte) (int, error) { return 0, io.EOF }

// unframe copies the payloads of Docker-framed output (stdout and stderr
// together, as the classic builder shows them) from r to w.
func unframe(w io.Writer, r io.Reader) {
	buf := make([]byte, 32*1024)
	for {
		_, payload, err := shim.ReadFrame(r, buf)
		if err != nil {
			_, _ = io.Copy(io.Discard, r) // let the writer finish; what it wrote is not wanted
			return
		}
		// The build's output stream: a client that went away does not
		// fail the step.
		_, _ = w.Write(payload)
	}
}

// Apply unpacks layer on a scratch filesystem made from parent, inside
// its root (openat2: no entry or symlink leads out), and stores the
// change as a layer.
func (b *BuildBackend) Apply(ctx context.Context, parent build.Image, layer io.Reader, cfg dockerspec.DockerOCIImage) (build.Image, error) {
	s := b.Containers
	lr, ok := s.Rootfs.(LayerReader)
	if !ok {
		return build.Image{}, errdefs.NotImplementedf("this storage cannot make a layer of a build step")
	}
	id := newID()
	if err := os.MkdirAll(b.ScratchDir, 0o700); err != nil {
		return build.Image{}, err
	}
	note := filepath.Join(b.ScratchDir, id)
	if err := os.WriteFile(note, nil, 0o600); err != nil {
		return build.Image{}, err
	}
	defer func() {
		if err := s.Rootfs.RemoveRootfs(id); err != nil {
			s.Log.Warn("removing a build step's scratch filesystem", "id", id, "err", err)
			return // left noted for Recover
		}
		if err := os.Remove(note); err != nil {
			s.Log.Warn("removing a build step's note", "path", note, "err", err)
		}
	}()
	if err := s.Rootfs.CreateRootfs(id, parent.ID, nil, nil); err != nil {
		return build.Image{}, fmt.Errorf("making a scratch filesystem: %w", err)
	}
	r, done, err := s.mountedRoot(id)
	if err != nil {
		return build.Image{}, err
	}
	err = r.Untar(ctx, "/", layer, rootdir.UntarOptions{})
	done()
	if err != nil {
		return build.Image{}, err
	}
	diff, err := containerLayer(lr, id, false)
	if err != nil {
		return build.Image{}, err
	}
	defer diff.Close()
	newID, err := b.Images.PutImage(ctx, parent.ID, diff, cfg)
	if err != nil {
		return build.Image{}, err
	}
	return b.image(ctx, newID)
}

// Commit records parent's layers with config cfg.
func (b *BuildBackend) Commit(ctx context.Context, parent build.Image, cfg dockerspec.DockerOCIImage) (build.Image, error) {
	id, err := b.Images.ConfigImage(ctx, parent.ID, cfg)
	if err != nil {
		return build.Image{}, err
	}
	return b.image(ctx, id)
}

// Mount mounts image id read-only; an image without layers is an empty
// directory.
func (b *BuildBackend) Mount(ctx context.Context, id string) (string, func(), error) {
	root, err := b.Images.MountImage(id)
	if errors.Is(err, image.ErrNoLayers) {
		dir, err := os.MkdirTemp(b.TmpDir, "empty-*")
		if err != nil {
			return "", nil, err
		}
		return dir, func() { _ = os.Remove(dir) }, nil // an empty temp dir: a leak is harmless and cleaned with TmpDir
	}
	if err != nil {
		return "", nil, err
	}
	var once sync.Once
	return root, func() {
		once.Do(func() {
			if err := b.Images.UnmountImage(id); err != nil {
				b.Containers.Log.Warn("unmounting a build's image", "id", id, "err", err)
			}
		})
	}, nil
}

// Tag names image id ref.
func (b *BuildBackend) Tag(ctx context.Context, id, ref string) error {
	return b.Images.Tag(id, ref)
}

// Recover removes what builds a crash interrupted left: RUN containers
// and scratch filesystems. lodged calls it once at start, before it
// serves.
func (b *BuildBackend) Recover(ctx context.Context) {
	s := b.Containers
	for _, c := range s.recs.all() {
		c.mu.Lock()
		step := c.BuildStep
		c.mu.Unlock()
		if step {
			if err := s.Remove(ctx, c.ID, RemoveOptions{Force: true, Volumes: true}); err != nil {
				s.Log.Warn("removing an interrupted build's container", "id", c.ID, "err", err)
			}
		}
	}
	ents, _ := os.ReadDir(b.ScratchDir)
	for _, e := range ents {
		if err := s.Rootfs.RemoveRootfs(e.Name()); err != nil {
			s.Log.Warn("removing an interrupted build's scratch filesystem", "id", e.Name(), "err", err)
			continue
		}
		if err := os.Remove(filepath.Join(b.ScratchDir, e.Name())); err != nil {
			s.Log.Warn("removing an interrupted build's note", "id", e.Name(), "err", err)
		}
	}
}

// containerLayer is container id's writable layer as a tar, without the
// runtime's own files when filter is set. The store holds its layers
// locked while a diff is open, and whoever reads this will put a layer:
// the diff is closed before the reader ends.
func containerLayer(lr LayerReader, id string, filter bool) (io.ReadCloser, error) {
	diff, err := lr.Diff(id)
	if err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	go func() {
		var err error
		if filter {
			err = filterLayer(pw, diff)
		} else {
			_, err = io.Copy(pw, diff)
		}
		diff.Close()
		pw.CloseWithError(err)
	}()
	return pr, nil
}
