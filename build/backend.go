package build

import (
	"context"
	"io"
	"strconv"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
)

// Image is an image a build starts from or has made: its ID in lodge's
// store (hex, no "sha256:") and its whole config, history and rootfs
// included. A zero ID is scratch: no layers.
type Image struct {
	ID     string
	Config dockerspec.DockerOCIImage
}

// Backend is what a build needs from lodged. The daemon implements it
// over its image store and container runtime; tests use a fake. It must
// be safe for concurrent use: independent stages build at the same time.
//
// Every method that makes an image takes the new image's config whole
// (history entry for the step included); the backend only appends the new
// layer's diff ID to RootFS.DiffIDs.
type Backend interface {
	// Base resolves ref to a local image, pulling it when it is missing or
	// when pull is set; pull progress goes to out as text lines. The error
	// wraps errdefs.ErrNotFound when no registry has it.
	Base(ctx context.Context, ref string, pull bool, out io.Writer) (Image, error)
	// Lookup returns the local image id, or an error wrapping
	// errdefs.ErrNotFound (a cache entry whose image was removed).
	Lookup(ctx context.Context, id string) (Image, error)
	// Run runs req.Cmd in a container made from req.Parent, as a RUN step:
	// the user namespace, seccomp and capabilities of any container, the
	// network req.Network names. Its output goes to req.Out. When it exits
	// 0 its filesystem changes become a new layer on req.Parent with config
	// req.Config. A non-zero exit returns *ExitError. The container and its
	// rootfs are gone when Run returns, whatever happened.
	Run(ctx context.Context, req RunRequest) (Image, error)
	// Apply unpacks layer (an uncompressed tar, names relative to /, never
	// followed outside the root) onto parent's filesystem and stores the
	// change as a new layer with config cfg. Ownership and modes come from
	// the tar headers.
	Apply(ctx context.Context, parent Image, layer io.Reader, cfg dockerspec.DockerOCIImage) (Image, error)
	// Commit records an image with parent's layers and config cfg, no new
	// layer: the end of a build whose last steps only change the config.
	Commit(ctx context.Context, parent Image, cfg dockerspec.DockerOCIImage) (Image, error)
	// Mount gives a read-only view of image id's root filesystem (COPY
	// --from, --chown by name, RUN --mount=from=...) until release.
	Mount(ctx context.Context, id string) (root string, release func(), err error)
	// Tag names image id ref (repo[:tag]).
	Tag(ctx context.Context, id, ref string) error
}

// RunRequest is one RUN step.
type RunRequest struct {
	Parent Image
	// Config is the image the step makes, should it succeed. Its
	// Config.Env, User and WorkingDir are the step's process's too.
	Config     dockerspec.DockerOCIImage
	Cmd        []string // argv, the shell form already wrapped in SHELL
	Env        []string // the step's environment: Config's plus build args in use
	Network    string   // "default" (the bridge), "none" or "host"
	ExtraHosts []string // host:ip, as --add-host
	Mounts     []Mount  // RUN --mount
	Out        io.Writer
}

// Mount is a RUN --mount, resolved to lodged's paths.
type Mount struct {
	Type     string // "bind" or "tmpfs"
	Source   string // host path for bind: a cache dir, the context, a stage's root
	Target   string // path in the container
	ReadOnly bool
}

// ExitError is a RUN step whose command exited non-zero.
type ExitError struct {
	Code int
}

func (e *ExitError) Error() string {
	return "exit code " + strconv.Itoa(e.Code)
}
