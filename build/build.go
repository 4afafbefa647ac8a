package build

import (
	"context"
	"io"
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
func (b *Builder) Build(ctx context.Context, contextTar io.Reader, opts Options, out io.Writer) (string, error) {
	panic("build: not written yet")
}
