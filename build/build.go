package build

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/lodge-containers/lodge/errdefs"
)

// Options are one build's settings, as POST /build's query gives them.
type Options struct {
	Dockerfile string             // path in the context; "" is Dockerfile
	Tags       []string           // repo[:tag] names for the result
	Target     string             // the stage to build; "" is the last
	BuildArgs  map[string]*string // ARG values; nil means take it from the environment (none here)
	Labels     map[string]string  // added to the result's config
	NoCache    bool
	Pull       bool     // pull every base image even when it is local
	CacheFrom  []string // images whose history may serve as cache
	Network    string   // RUN steps' network: "" or "default", "none", "host"
	ExtraHosts []string // host:ip for RUN steps
	Platform   string   // "" or the native platform; others are refused
	Quiet      bool     // print only the result
}

// Builder turns Dockerfiles and their contexts into images. It is safe for
// concurrent use.
type Builder struct {
	backend Backend
	dir     string
}

// New returns a builder over backend that keeps its cache index, cache
// mounts and unpacked contexts under dir (on the data root's disk).
func New(backend Backend, dir string) *Builder {
	return &Builder{backend: backend, dir: dir}
}

// Build reads the context (a tar, possibly compressed, or a bare
// Dockerfile) from contextTar, builds opts.Target and returns the new
// image's ID ("sha256:..."). Progress goes to out as text, the way
// Docker's builder prints it ("Step 1/5 : FROM busybox", " ---> 1a2b3c",
// the RUN output). Errors name the step.
//
// Errors are classed with errdefs: ErrInvalidArgument for a bad
// Dockerfile, context or option, ErrNotFound for a missing stage, base
// image or COPY source, ErrNotImplemented for what lodge does not build.
// A RUN that fails wraps *ExitError. Independent stages run at the same
// time; ctx stops everything.
func (b *Builder) Build(ctx context.Context, contextTar io.Reader, opts Options, out io.Writer) (string, error) {
	if err := checkPlatform(opts.Platform); err != nil {
		return "", err
	}
	switch opts.Network {
	case "", "default", "none", "host":
	default:
		return "", errdefs.InvalidArgumentf("network mode %q is not supported for a build: use default, none or host", opts.Network)
	}
	tags, err := normalizeTags(opts.Tags)
	if err != nil {
		return "", err
	}
	dockerfile := opts.Dockerfile
	if dockerfile == "" {
		dockerfile = "Dockerfile"
	}

	contexts := filepath.Join(b.dir, "contexts")
	if err := os.MkdirAll(contexts, 0o700); err != nil {
		return "", err
	}
	work, err := os.MkdirTemp(contexts, "build-")
	if err != nil {
		return "", err
	}
	defer func() {
		// The build's result stands; a work directory left behind is
		// only space, worth a line in the log.
		if err := os.RemoveAll(work); err != nil {
			slog.Warn("build: work directory left behind", "dir", work, "err", err)
		}
	}()
	ctxDir := filepath.Join(work, "context")
	if err := os.Mkdir(ctxDir, 0o700); err != nil {
		return "", err
	}
	// The context arrives while the build runs (contextStream); whatever
	// the build's end, the rest of it is read first.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	cs := startContext(ctx, contextTar, ctxDir, dockerfile, cancel)
	defer cs.drain()
	// An error of the context's own is the one to report: a step that
	// stopped because of it only says it was cancelled.
	failed := func(err error) (string, error) {
		if cerr := cs.failed(); cerr != nil {
			return "", cerr
		}
		return "", err
	}
	df, _, err := cs.dockerfile(ctx, dockerfile)
	if err != nil {
		return failed(err)
	}
	p, err := newPlan(df, opts)
	if err != nil {
		return failed(err)
	}

	r := &buildRun{b: b, opts: opts, plan: p, bc: cs.bc, ctxReady: cs.ready, work: work, p: newPrinter(out, opts.Quiet), results: map[*stagePlan]*stageFuture{}}
	for _, w := range p.warnings {
		r.p.Printf("%s\n", w)
	}
	final, err := r.runStages(ctx)
	if err != nil {
		return failed(err)
	}
	// A context that is broken fails the build even when no step read it.
	if err := cs.ready(ctx); err != nil {
		return failed(err)
	}
	finisher := &stageRun{buildRun: r, sp: p.target}
	img, err := finisher.finish(ctx, final, opts.Labels)
	if err != nil {
		return "", err
	}
	if unused := p.args.unused(); len(unused) > 0 {
		r.p.Printf("[Warning] One or more build-args %v were not consumed\n", unused)
	}
	id := strings.TrimPrefix(img.ID, "sha256:")
	r.p.Printf("Successfully built %s\n", shortID(id))
	for _, t := range tags {
		if err := b.backend.Tag(ctx, id, t); err != nil {
			return "", err
		}
		r.p.Printf("Successfully tagged %s\n", t)
	}
	return "sha256:" + id, nil
}
