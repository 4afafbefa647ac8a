package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"

	"github.com/lodge-containers/lodge/daemon"
	"github.com/lodge-containers/lodge/errdefs"
)

// ContainerBackend runs containers. (daemon.ContainerAPI fits.)
type ContainerBackend interface {
	Create(ctx context.Context, name string, cfg *container.Config, hc *container.HostConfig, nc *network.NetworkingConfig) (container.CreateResponse, error)
	Start(ctx context.Context, ref string) error
	Stop(ctx context.Context, ref string, timeout *int, signal string) error
	Restart(ctx context.Context, ref string, timeout *int, signal string) error
	Kill(ctx context.Context, ref, signal string) error
	Remove(ctx context.Context, ref string, opts daemon.RemoveOptions) error
	WaitFor(ref string, condition container.WaitCondition) (func(context.Context) (container.WaitResponse, error), error)
	Rename(ctx context.Context, ref, name string) error
	// Prune removes the stopped containers the filters (until, label,
	// label!) select.
	Prune(ctx context.Context, filters map[string][]string) (container.PruneReport, error)

	AttachFor(ref string, opts daemon.AttachOptions) (func(ctx context.Context, client daemon.AttachStream) error, error)
	Resize(ctx context.Context, ref string, height, width uint) error
	Logs(ctx context.Context, ref string, opts daemon.LogsOptions, w io.Writer) error
	LogsTTY(ref string) (bool, error)

	List(opts daemon.ListOptions) ([]container.Summary, error)
	Inspect(ref string) (container.InspectResponse, error)
	// Sizes is the container's SizeRw and SizeRootFs (size=1).
	Sizes(ref string) (rw, rootfs int64, err error)
	// Top runs ps with psArgs ("" for -ef) over the container's processes.
	Top(ctx context.Context, ref, psArgs string) (container.TopResponse, error)
}

var _ ContainerBackend = daemon.ContainerAPI{}

// imagePlatformChecker is a container backend that can refuse a create
// whose image is not of the platform asked for.
type imagePlatformChecker interface {
	CheckImagePlatform(ctx context.Context, ref, platform string) error
}

// logReadChecker is a container backend that can refuse to read logs a
// container's log driver does not keep.
type logReadChecker interface {
	CheckLogsReadable(ref string) error
}

var (
	_ imagePlatformChecker = (*daemon.Containers)(nil)
	_ logReadChecker       = daemon.ContainerAPI{}
)

// LinkRemover removes a legacy link, named "/parent/alias", leaving both
// containers. A ContainerBackend that is one serves DELETE ?link=1.
type LinkRemover interface {
	RemoveLink(name string) error
}

var _ LinkRemover = daemon.ContainerAPI{}

func (s *Server) addContainerRoutes(b ContainerBackend) {
	s.handle("POST /containers/create", func(w http.ResponseWriter, r *http.Request) error {
		var body struct {
			container.CreateRequest
			// MacAddress is the container-wide MAC address of clients
			// before API 1.44, gone from moby's types.
			MacAddress string `json:",omitempty"`
		}
		if err := decodeJSON(w, r, &body); err != nil {
			return err
		}
		req := body.CreateRequest
		if req.Config == nil {
			return errdefs.InvalidArgumentf("config cannot be empty in order to create a container")
		}
		if hc := req.Config.Healthcheck; hc != nil && cmpVersion(APIVersion(r.Context()), "1.44") < 0 {
			// StartInterval came with API 1.44; an older client's value
			// is not one it meant, and Docker drops it too.
			hc.StartInterval = 0
		}
		ctx := r.Context()
		if req.HostConfig != nil && cmpVersion(APIVersion(ctx), "1.43") < 0 {
			// Annotations came with API 1.43: Docker drops an older
			// client's.
			req.HostConfig.Annotations = nil
		}
		if cmpVersion(APIVersion(ctx), "1.44") < 0 {
			if err := oldReadOnlyBinds(req.HostConfig); err != nil {
				return err
			}
			ctx = daemon.WithReadOnlyNonRecursive(ctx)
		}
		if pc, ok := b.(imagePlatformChecker); ok {
			if err := pc.CheckImagePlatform(ctx, req.Config.Image, r.URL.Query().Get("platform")); err != nil {
				return err
			}
		}
		macWarning, err := containerMAC(APIVersion(ctx), body.MacAddress, &req)
		if err != nil {
			return err
		}
		resp, err := b.Create(ctx, r.URL.Query().Get("name"), req.Config, req.HostConfig, req.NetworkingConfig)
		if err != nil {
			return err
		}
		if macWarning != "" {
			resp.Warnings = append(resp.Warnings, macWarning)
		}
		writeJSON(w, http.StatusCreated, resp)
		return nil
	})
	noContent := func(f func(r *http.Request) error) handlerFunc {
		return func(w http.ResponseWriter, r *http.Request) error {
			err := f(r)
			if daemon.IsNotModified(err) {
				w.WriteHeader(http.StatusNotModified)
				return nil
			}
			if err != nil {
				return err
			}
			w.WriteHeader(http.StatusNoContent)
			return nil
		}
	}
	s.handle("POST /containers/{id}/start", noContent(func(r *http.Request) error {
		return b.Start(r.Context(), r.PathValue("id"))
	}))
	s.handle("POST /containers/{id}/stop", noContent(func(r *http.Request) error {
		t, err := intValue(r, "t")
		if err != nil {
			return err
		}
		return b.Stop(r.Context(), r.PathValue("id"), t, r.URL.Query().Get("signal"))
	}))
	s.handle("POST /containers/{id}/restart", noContent(func(r *http.Request) error {
		t, err := intValue(r, "t")
		if err != nil {
			return err
		}
		return b.Restart(r.Context(), r.PathValue("id"), t, r.URL.Query().Get("signal"))
	}))
	s.handle("POST /containers/{id}/kill", noContent(func(r *http.Request) error {
		return b.Kill(r.Context(), r.PathValue("id"), r.URL.Query().Get("signal"))
	}))
	s.handle("DELETE /containers/{id}", noContent(func(r *http.Request) error {
		return b.Remove(r.Context(), r.PathValue("id"), daemon.RemoveOptions{Force: boolValue(r, "force"), Volumes: boolValue(r, "v")})
	}))
	if lr, ok := b.(LinkRemover); ok {
		// docker rm --link /app/db: the path is /containers//app/db,
		// its slashes collapsed by ServeHTTP.
		s.handle("DELETE /containers/{parent}/{alias}", noContent(func(r *http.Request) error {
			name := "/" + r.PathValue("parent") + "/" + r.PathValue("alias")
			if !boolValue(r, "link") {
				return errdefs.NotFoundf("No such container: %s", name)
			}
			return lr.RemoveLink(name)
		}))
	}
	s.handle("POST /containers/{id}/rename", noContent(func(r *http.Request) error {
		return b.Rename(r.Context(), r.PathValue("id"), r.URL.Query().Get("name"))
	}))
	s.handle("POST /containers/{id}/resize", func(w http.ResponseWriter, r *http.Request) error {
		h, wd, err := resizeParams(r)
		if err != nil {
			return err
		}
		if err := b.Resize(r.Context(), r.PathValue("id"), h, wd); err != nil {
			return err
		}
		w.WriteHeader(http.StatusOK)
		return nil
	})
	s.handle("POST /containers/{id}/wait", func(w http.ResponseWriter, r *http.Request) error {
		wait, err := b.WaitFor(r.PathValue("id"), container.WaitCondition(r.URL.Query().Get("condition")))
		if err != nil {
			return err
		}
		// Headers go out at once, the wait already registered: the docker
		// CLI posts wait before start, starts when it has the headers, and
		// reads the status code from the body at the end.
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		resp, err := wait(r.Context())
		if err != nil {
			resp = container.WaitResponse{StatusCode: -1, Error: &container.WaitExitError{Message: err.Error()}}
		}
		return json.NewEncoder(w).Encode(resp)
	})
	s.handle("POST /containers/{id}/attach", func(w http.ResponseWriter, r *http.Request) error {
		id := r.PathValue("id")
		tty, err := b.LogsTTY(id)
		if err != nil {
			return err
		}
		ct := streamType(tty)
		opts := daemon.AttachOptions{Stdin: boolValue(r, "stdin"), Stdout: boolValue(r, "stdout"), Stderr: boolValue(r, "stderr"), Stream: boolValue(r, "stream"), Logs: boolValue(r, "logs"),
			DetachKeys: r.URL.Query().Get("detachKeys")}
		// Registered before the hijack is answered: see AttachFor.
		connect, err := b.AttachFor(id, opts)
		if err != nil {
			return err
		}
		hj, err := hijack(w, r, ct)
		if err != nil {
			_ = connect(r.Context(), nil) // drops the attach registered above; the hijack's error is the answer
			return err
		}
		defer hj.Close()
		if err := connect(context.WithoutCancel(r.Context()), hj); err != nil {
			s.log.Debug("attach ended", "id", id, "err", err)
		}
		_ = hj.CloseWrite() // the client may be gone: the stream is over either way
		return nil
	})
	s.handle("GET /containers/{id}/attach/ws", s.attachWS(b))
	s.handle("GET /containers/{id}/logs", func(w http.ResponseWriter, r *http.Request) error {
		id := r.PathValue("id")
		tty, err := b.LogsTTY(id)
		if err != nil {
			return err
		}
		if lc, ok := b.(logReadChecker); ok {
			if err := lc.CheckLogsReadable(id); err != nil {
				return err
			}
		}
		opts := daemon.LogsOptions{Stdout: boolValue(r, "stdout"), Stderr: boolValue(r, "stderr"), Follow: boolValue(r, "follow"), Timestamps: boolValue(r, "timestamps"), Details: boolValue(r, "details"), Tail: r.URL.Query().Get("tail")}
		if opts.Since, err = unixTime(r.URL.Query().Get("since")); err != nil {
			return err
		}
		if opts.Until, err = unixTime(r.URL.Query().Get("until")); err != nil {
			return err
		}
		if !opts.Stdout && !opts.Stderr {
			return errdefs.InvalidArgumentf("Bad parameters: you must choose at least one stream")
		}
		ct := streamType(tty)
		w.Header().Set("Content-Type", ct)
		w.WriteHeader(http.StatusOK)
		fw := newFlushWriter(w)
		fw.f.Flush()
		if err := b.Logs(r.Context(), id, opts, fw); err != nil {
			s.log.Debug("logs ended", "id", id, "err", err)
		}
		return nil
	})
	s.handle("GET /containers/json", func(w http.ResponseWriter, r *http.Request) error {
		f, err := filters(r)
		if err != nil {
			return err
		}
		limit, err := intValue(r, "limit")
		if err != nil {
			return err
		}
		opts := daemon.ListOptions{All: boolValue(r, "all"), Filters: f, Size: boolValue(r, "size")}
		if limit != nil {
			opts.Limit = *limit
		}
		list, err := b.List(opts)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, list)
		return nil
	})
	s.handle("GET /containers/{id}/json", func(w http.ResponseWriter, r *http.Request) error {
		resp, err := b.Inspect(r.PathValue("id"))
		if err != nil {
			return err
		}
		if boolValue(r, "size") {
			rw, rootfs, err := b.Sizes(resp.ID)
			if err != nil {
				return err
			}
			resp.SizeRw, resp.SizeRootFs = &rw, &rootfs
		}
		writeJSON(w, http.StatusOK, withLegacyNetworkSettings(r.Context(), resp))
		return nil
	})
	s.handle("GET /containers/{id}/top", func(w http.ResponseWriter, r *http.Request) error {
		resp, err := b.Top(r.Context(), r.PathValue("id"), r.URL.Query().Get("ps_args"))
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, resp)
		return nil
	})
	s.handle("POST /containers/prune", func(w http.ResponseWriter, r *http.Request) error {
		f, err := filters(r)
		if err != nil {
			return err
		}
		rep, err := b.Prune(r.Context(), f)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, rep)
		return nil
	})
}

// oldReadOnlyBinds checks a create of a client older than API 1.44, whose
// read-only binds are not recursive: one that asks for recursive ones
// anyway is refused, as Docker refuses it, rather than given less.
func oldReadOnlyBinds(hc *container.HostConfig) error {
	if hc == nil {
		return nil
	}
	for _, m := range hc.Mounts {
		if m.Type == mount.TypeBind && m.BindOptions != nil && m.BindOptions.ReadOnlyForceRecursive {
			return errdefs.InvalidArgumentf("BindOptions.ReadOnlyForceRecursive needs API v1.44 or newer")
		}
	}
	return nil
}

// containerMAC moves a create's container-wide MAC address to the
// endpoint of its network, as Docker does since API 1.44 made it a
// setting of the endpoint: before 1.44 it is the only one (an endpoint's
// own is ignored, as those clients could not send one); from 1.44 it is
// deprecated, and a warning says so.
func containerMAC(version, mac string, req *container.CreateRequest) (warning string, err error) {
	old := cmpVersion(version, "1.44") < 0
	if mac == "" {
		if old && req.NetworkingConfig != nil {
			for _, ep := range req.NetworkingConfig.EndpointsConfig {
				if ep != nil {
					ep.MacAddress = nil
				}
			}
		}
		return "", nil
	}
	hw, err := net.ParseMAC(mac)
	if err != nil {
		return "", errdefs.InvalidArgumentf("invalid MAC address: %s", mac)
	}
	var mode string
	if req.HostConfig != nil {
		mode = string(req.HostConfig.NetworkMode)
	}
	switch {
	case mode == "" || mode == "default":
		mode = "bridge"
	case mode == "host" || mode == "none" || strings.HasPrefix(mode, "container:"):
		return "", errdefs.InvalidArgumentf("conflicting options: mac-address and the network mode")
	}
	if req.NetworkingConfig == nil {
		req.NetworkingConfig = &network.NetworkingConfig{}
	}
	eps := req.NetworkingConfig.EndpointsConfig
	if eps == nil {
		eps = map[string]*network.EndpointSettings{}
		req.NetworkingConfig.EndpointsConfig = eps
	}
	ep := eps[mode]
	if ep == nil {
		if len(eps) > 0 {
			return "", errdefs.InvalidArgumentf("unable to migrate container-wide MAC address to a specific network: HostConfig.NetworkMode must match the identity of a network in NetworkSettings.Networks")
		}
		ep = &network.EndpointSettings{}
		eps[mode] = ep
	}
	if old || len(ep.MacAddress) == 0 {
		ep.MacAddress = network.HardwareAddr(hw)
	} else if !bytes.Equal(ep.MacAddress, hw) {
		return "", errdefs.InvalidArgumentf("the container-wide MAC address must match the endpoint-specific MAC address for the main network, or be left empty")
	}
	if old {
		return "", nil
	}
	return "The container-wide MacAddress field is now deprecated. It should be specified in EndpointsConfig instead.", nil
}
