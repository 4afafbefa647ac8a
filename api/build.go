package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"

	"github.com/moby/moby/api/types/jsonstream"

	"github.com/lodge-containers/lodge/build"
	"github.com/lodge-containers/lodge/errdefs"
)

// BuildBackend builds images from Dockerfiles with the classic builder.
// (*daemon.Builds fits.)
type BuildBackend interface {
	// Build writes the build's text progress to out and returns the new
	// image's ID ("sha256:..."). A failed RUN wraps *build.ExitError.
	Build(ctx context.Context, contextTar io.Reader, opts build.Options, out io.Writer) (string, error)
	// PruneCache forgets the build cache and deletes the images only it
	// used, returning their IDs and the space freed.
	PruneCache(ctx context.Context) (deleted []string, reclaimed uint64, err error)
}

// BuildKitBackend reaches BuildKit, which lodge runs in a helper process
// (*daemon.BuildKit fits). The API forwards /grpc and /session to it byte
// for byte, so nothing of BuildKit's protocol lives here.
type BuildKitBackend interface {
	// Dial connects to BuildKit's HTTP endpoint, starting it if needed.
	Dial(ctx context.Context) (net.Conn, error)
	// PruneCache empties BuildKit's cache if BuildKit runs.
	PruneCache(ctx context.Context) (deleted []string, reclaimed uint64, err error)
}

// notBuildKit is what the BuildKit routes answer when lodged runs without
// its BuildKit helper: the classic builder still works.
const notBuildKit = "this lodged serves the classic builder only, not BuildKit (lodge-buildkitd or runc is missing): build with DOCKER_BUILDKIT=0 (the docker CLI without buildx uses the classic builder)"

func (s *Server) addBuildRoutes(b BuildBackend, bk BuildKitBackend) {
	var mu sync.Mutex
	running := map[string]context.CancelFunc{} // by the client's buildid
	s.handle("POST /build", func(w http.ResponseWriter, r *http.Request) error {
		opts, err := buildOptions(r)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithCancel(r.Context()) // the client going away ends the build
		defer cancel()
		if id := r.URL.Query().Get("buildid"); id != "" {
			mu.Lock()
			running[id] = cancel
			mu.Unlock()
			defer func() { mu.Lock(); delete(running, id); mu.Unlock() }()
		}
		body, err := buildContext(ctx, r)
		if err != nil {
			return err
		}
		defer body.Close()
		// The build's output (warnings, then its steps) goes out while the
		// context still comes in. Without this, Go's HTTP/1 server would
		// throw away up to 256 KiB of the unread body at the first write.
		// A writer that cannot (a test's recorder) keeps the old order.
		_ = http.NewResponseController(w).EnableFullDuplex()
		return s.streamBuild(w, func(out io.Writer) (string, error) {
			for _, warn := range unappliedLimits(r) {
				fmt.Fprintf(out, "[WARNING]: %s\n", warn)
			}
			return b.Build(ctx, body, opts, out)
		}, opts.Quiet)
	})
	s.handle("POST /build/cancel", func(w http.ResponseWriter, r *http.Request) error {
		id := r.URL.Query().Get("id")
		mu.Lock()
		cancel, ok := running[id]
		mu.Unlock()
		if !ok {
			return errdefs.NotFoundf("no build with id %q is running", id)
		}
		cancel()
		w.WriteHeader(http.StatusOK)
		return nil
	})
	s.handle("POST /build/prune", func(w http.ResponseWriter, r *http.Request) error {
		f, err := filters(r)
		if err != nil {
			return err
		}
		// lodge empties the whole cache: a prune asked to keep some of
		// it is refused, not turned into one that keeps nothing.
		if len(f) > 0 {
			return errdefs.NotImplementedf("build cache prune filters are not implemented: lodge prunes the whole build cache (docker builder prune without --filter)")
		}
		for _, keep := range []string{"keep-storage", "reserved-space", "max-used-space", "min-free-space"} {
			if v := r.URL.Query().Get(keep); v != "" && v != "0" {
				return errdefs.NotImplementedf("build cache prune %s is not implemented: lodge prunes the whole build cache", keep)
			}
		}
		deleted, freed, err := b.PruneCache(r.Context())
		if err != nil {
			return err
		}
		if bk != nil {
			more, bkFreed, err := bk.PruneCache(r.Context())
			if err != nil {
				return err
			}
			deleted, freed = append(deleted, more...), freed+bkFreed
		}
		if deleted == nil {
			deleted = []string{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"CachesDeleted": deleted, "SpaceReclaimed": freed})
		return nil
	})
	if bk != nil {
		for _, route := range []string{"POST /session", "POST /grpc"} {
			s.handle(route, func(w http.ResponseWriter, r *http.Request) error {
				return forwardUpgrade(w, r, bk)
			})
		}
		return
	}
	for _, route := range []string{"POST /session", "GET /grpc", "POST /grpc"} {
		s.handle(route, func(w http.ResponseWriter, r *http.Request) error {
			return errdefs.NotImplementedf("%s", notBuildKit)
		})
	}
}

// forwardUpgrade hands an upgrade request (Upgrade: h2c) to BuildKit: it
// replays the request head on a connection to the helper, then copies both
// ways until either side closes. The helper answers the 101 itself, so the
// client talks to BuildKit exactly as to Docker's embedded one.
func forwardUpgrade(w http.ResponseWriter, r *http.Request, bk BuildKitBackend) error {
	if r.Header.Get("Upgrade") == "" {
		return errdefs.InvalidArgumentf("%s needs a connection upgrade (h2c)", r.URL.Path)
	}
	up, err := bk.Dial(r.Context())
	if err != nil {
		return err
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		up.Close()
		return fmt.Errorf("connection cannot be hijacked")
	}
	conn, brw, err := hj.Hijack()
	if err != nil {
		up.Close()
		return err
	}
	defer conn.Close()
	defer up.Close()
	// RequestURI is the client's own, with its /v1.NN prefix: the helper
	// sees what Docker's daemon would have seen.
	head := &bytes.Buffer{}
	fmt.Fprintf(head, "%s %s HTTP/1.1\r\nHost: %s\r\n", r.Method, r.RequestURI, r.Host)
	_ = r.Header.Write(head) // a bytes.Buffer does not fail
	head.WriteString("\r\n")
	if _, err := up.Write(head.Bytes()); err != nil {
		return nil // the client sees its connection close; nothing else to tell
	}
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, brw.Reader); done <- struct{}{} }() // brw may hold bytes read past the head
	go func() { _, _ = io.Copy(conn, up); done <- struct{}{} }()
	<-done // either side gone: the other has nobody to talk to
	return nil
}

// buildOptions reads POST /build's query.
func buildOptions(r *http.Request) (build.Options, error) {
	q := r.URL.Query()
	if v := q.Get("version"); v == "2" {
		// Docker's version=2 builds ride a /session the client opened;
		// buildx and compose v2 use /grpc instead, which lodge serves.
		return build.Options{}, errdefs.NotImplementedf("POST /build?version=2 is not served: build with docker buildx (lodge serves BuildKit through /grpc), or with the classic builder (DOCKER_BUILDKIT=0)")
	}
	if boolValue(r, "squash") {
		return build.Options{}, errdefs.NotImplementedf("squash is not implemented by lodge's builder")
	}
	if raw := q.Get("outputs"); raw != "" {
		var outs []struct{ Type string }
		if err := json.Unmarshal([]byte(raw), &outs); err != nil {
			return build.Options{}, errdefs.InvalidArgumentf("invalid outputs: %v", err)
		}
		for _, o := range outs {
			if o.Type != "moby" {
				return build.Options{}, errdefs.NotImplementedf("build output %q: lodge's classic builder stores images only", o.Type)
			}
		}
	}
	opts := build.Options{
		Dockerfile: q.Get("dockerfile"), Tags: q["t"], Target: q.Get("target"),
		NoCache: boolValue(r, "nocache"), Pull: boolValue(r, "pull"), Quiet: boolValue(r, "q"),
		Network: q.Get("networkmode"), Platform: q.Get("platform"),
	}
	for _, h := range q["extrahosts"] {
		for _, one := range strings.Split(h, ",") { // old clients join them
			if one = strings.TrimSpace(one); one != "" {
				opts.ExtraHosts = append(opts.ExtraHosts, one)
			}
		}
	}
	switch opts.Network {
	case "", "default", "bridge":
		opts.Network = "default"
	case "none", "host":
	default:
		return build.Options{}, errdefs.NotImplementedf("network mode %q for a build: lodge builds with bridge (default), none or host", opts.Network)
	}
	if err := jsonParam(q.Get("buildargs"), &opts.BuildArgs); err != nil {
		return build.Options{}, errdefs.InvalidArgumentf("invalid buildargs: %v", err)
	}
	if err := jsonParam(q.Get("labels"), &opts.Labels); err != nil {
		return build.Options{}, errdefs.InvalidArgumentf("invalid labels: %v", err)
	}
	if err := jsonParam(q.Get("cachefrom"), &opts.CacheFrom); err != nil {
		return build.Options{}, errdefs.InvalidArgumentf("invalid cachefrom: %v", err)
	}
	return opts, nil
}

func jsonParam(raw string, v any) error {
	if raw == "" {
		return nil
	}
	return json.Unmarshal([]byte(raw), v)
}

// unappliedLimits names the resource limits a build asked for that
// lodge's RUN steps do not get, so that none is dropped silently.
func unappliedLimits(r *http.Request) []string {
	var out []string
	for _, k := range []string{"memory", "memswap", "cpushares", "cpusetcpus", "cpusetmems", "cpuperiod", "cpuquota", "shmsize", "cgroupparent", "ulimits"} {
		if v := r.URL.Query().Get(k); v != "" && v != "0" {
			out = append(out, fmt.Sprintf("the build option %s=%s is not applied: lodge runs RUN steps without build resource limits", k, v))
		}
	}
	return out
}

// buildContext is the build's context: the request body, or what the
// remote URL serves when it is a plain http(s) file or tarball.
func buildContext(ctx context.Context, r *http.Request) (io.ReadCloser, error) {
	remote := r.URL.Query().Get("remote")
	if remote == "" {
		return r.Body, nil
	}
	lower := strings.ToLower(remote)
	if !(strings.HasPrefix(lower, "http://") || strings.HasPrefix(lower, "https://")) || strings.HasSuffix(lower, ".git") || strings.Contains(remote, ".git#") {
		return nil, errdefs.NotImplementedf("remote build context %q: lodge fetches plain http(s) tarballs and Dockerfiles, not git repositories; clone it and build the directory", remote)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, remote, nil)
	if err != nil {
		return nil, errdefs.InvalidArgumentf("remote build context: %v", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, errdefs.InvalidArgumentf("fetching the remote build context: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, errdefs.InvalidArgumentf("fetching the remote build context %s: %s", remote, resp.Status)
	}
	return resp.Body, nil
}

// streamBuild runs a build, sending its text output as Docker's JSON
// stream as it comes, then the image ID (aux) or the error. Quiet builds
// send only the ID, or on failure everything they held back.
func (s *Server) streamBuild(w http.ResponseWriter, run func(out io.Writer) (string, error), quiet bool) error {
	lw := &lazyWriter{w: w}
	sw := &streamWriter{enc: json.NewEncoder(lw)}
	held := &lockedBuffer{}
	var out io.Writer = sw
	if quiet {
		out = held
	}
	id, err := run(out)
	if err != nil {
		if !lw.started && held.Len() == 0 && !errors.As(err, new(*build.ExitError)) && statusOf(err) != http.StatusInternalServerError {
			return err // nothing sent: a plain status says it best
		}
		if held.Len() > 0 {
			_, _ = sw.Write(held.Bytes()) // streamWriter.Write does not fail
		}
		detail := jsonstream.Error{Message: err.Error()}
		var ee *build.ExitError
		if errors.As(err, &ee) {
			detail.Code = ee.Code // the docker CLI exits with it, as with Docker
		}
		// "error" beside "errorDetail": docker-py and compose v1 read it.
		sw.sendAny(struct {
			Detail *jsonstream.Error `json:"errorDetail"`
			Error  string            `json:"error"`
		}{&detail, detail.Message})
		return nil
	}
	raw, _ := json.Marshal(map[string]string{"ID": id})
	aux := json.RawMessage(raw)
	sw.send(jsonstream.Message{Aux: &aux})
	if quiet {
		_, _ = sw.Write([]byte(id + "\n")) // as above
	}
	return nil
}

// streamWriter sends each write as a {"stream": ...} message. It is safe
// for concurrent use: a build's stages print at the same time.
type streamWriter struct {
	mu  sync.Mutex
	enc *json.Encoder
}

func (sw *streamWriter) send(m jsonstream.Message) { sw.sendAny(m) }

func (sw *streamWriter) sendAny(m any) {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	_ = sw.enc.Encode(m) // a client gone stops reading; the build ends on its context
}

func (sw *streamWriter) Write(p []byte) (int, error) {
	if len(p) > 0 {
		sw.send(jsonstream.Message{Stream: string(p)})
	}
	return len(p), nil
}

// lockedBuffer holds a quiet build's output; stages write at once.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Len()
}

func (b *lockedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Bytes()
}
