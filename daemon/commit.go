package daemon

import (
	"context"
	"fmt"
	"strings"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/lodge-containers/lodge/cgroupv2"
	"github.com/lodge-containers/lodge/errdefs"
	"github.com/lodge-containers/lodge/image"
)

// CommitRequest is POST /commit's.
type CommitRequest struct {
	Container string
	Ref       string // repo[:tag], or ""
	Author    string
	Comment   string
	Changes   []string
	// Config, when given, replaces the container's config as the image's.
	Config *container.Config
	// Pause freezes a running container while its layer is read, so the
	// image holds no half-written file.
	Pause bool
}

// Commit makes an image of a container's filesystem and config. With
// req.Pause a running container is frozen (its cgroup, not its recorded
// state) until its layer has been read; where lodged has no freezer it is
// read live, as with pause=0.
func (i *Images) Commit(ctx context.Context, req CommitRequest) (string, error) {
	s := i.Containers
	c, err := s.recs.get(req.Container)
	if err != nil {
		return "", err
	}
	lr, ok := s.Rootfs.(LayerReader)
	if !ok {
		return "", errdefs.NotImplementedf("this storage cannot commit a container")
	}
	c.mu.Lock()
	cfg := *c.Config
	ctrConfig := *c.Config // the container's own, before the request's changes
	imageID := c.ImageID
	createdBy := strings.Join(append([]string{c.Path}, c.Args...), " ")
	c.mu.Unlock()
	if o := req.Config; o != nil {
		// What the request sets wins; the rest is the container's.
		if len(o.Cmd) > 0 {
			cfg.Cmd = o.Cmd
		}
		if len(o.Entrypoint) > 0 {
			cfg.Entrypoint = o.Entrypoint
		}
		if len(o.Env) > 0 {
			cfg.Env = mergeImageConfig(&container.Config{Env: o.Env}, &ocispec.Image{Config: ocispec.ImageConfig{Env: cfg.Env}}).Env
		}
		if o.WorkingDir != "" {
			cfg.WorkingDir = o.WorkingDir
		}
		if o.User != "" {
			cfg.User = o.User
		}
		if len(o.Labels) > 0 {
			labels := map[string]string{} // not the record's own map
			for k, v := range cfg.Labels {
				labels[k] = v
			}
			for k, v := range o.Labels {
				labels[k] = v
			}
			cfg.Labels = labels
		}
	}
	if req.Pause {
		thaw, err := s.control.freezeForCommit(ctx, c)
		if err != nil {
			return "", err
		}
		defer thaw()
	}
	pr, err := containerLayer(lr, c.ID, true)
	if err != nil {
		return "", err
	}
	defer pr.Close()
	id, err := i.Maker.Commit(ctx, image.CommitOptions{
		Parent: imageID, Diff: pr, Config: imageConfig(&cfg), Changes: req.Changes,
		Ref: req.Ref, Author: req.Author, Comment: req.Comment, CreatedBy: createdBy,
		Container: c.ID, ContainerConfig: ctrConfig,
	})
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	s.Events.forContainer(c, events.ActionCommit, "comment", req.Comment, "imageID", "sha256:"+id, "imageRef", familiarName(req.Ref))
	c.mu.Unlock()
	return "sha256:" + id, nil
}

// imageConfig is the part of a container's config an image keeps.
func imageConfig(c *container.Config) dockerspec.DockerOCIImageConfig {
	out := dockerspec.DockerOCIImageConfig{ImageConfig: ocispec.ImageConfig{
		User: c.User, Env: c.Env, Entrypoint: c.Entrypoint, Cmd: c.Cmd, WorkingDir: c.WorkingDir,
		Labels: c.Labels, StopSignal: c.StopSignal,
	}}
	if len(c.ExposedPorts) > 0 {
		out.ExposedPorts = map[string]struct{}{}
		for p := range c.ExposedPorts {
			out.ExposedPorts[p.String()] = struct{}{}
		}
	}
	if len(c.Volumes) > 0 {
		out.Volumes = c.Volumes
	}
	if len(c.Shell) > 0 {
		out.Shell = c.Shell
	}
	out.Healthcheck = c.Healthcheck
	return out
}

// freezeForCommit freezes a running, unpaused container's cgroup and
// returns what thaws it. A container that is not running, is paused
// already, or has no freezer is left as it is.
func (x *CgroupControl) freezeForCommit(ctx context.Context, c *Container) (func(), error) {
	c.mu.Lock()
	live := c.running() && !c.State.Paused
	c.mu.Unlock()
	if !live || x.cg.tree == nil {
		return func() {}, nil
	}
	dir := x.cg.tree.ContainerDir(c.ID)
	fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := cgroupv2.Freeze(fctx, dir, true); err != nil {
		return nil, fmt.Errorf("pausing the container for commit: %w", err)
	}
	return func() {
		tctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := cgroupv2.Freeze(tctx, dir, false); err != nil {
			x.log.Warn("thawing a container after commit", "id", c.ID, "err", err)
		}
	}, nil
}
