package daemon

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/storage"

	"github.com/lodge-containers/lodge/errdefs"
	"github.com/lodge-containers/lodge/image"
	"github.com/lodge-containers/lodge/runtime"
)

// Inspect returns a container in Docker's inspect shape.
func (s *Containers) Inspect(ref string) (container.InspectResponse, error) {
	c, err := s.recs.get(ref)
	if err != nil {
		return container.InspectResponse{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	dir := s.recs.dir(c.ID)
	st := c.State
	hc := *c.HostConfig
	if hc.NetworkMode == "" {
		hc.NetworkMode = "bridge"
	}
	if hc.RestartPolicy.Name == "" {
		hc.RestartPolicy.Name = container.RestartPolicyDisabled
	}
	cfg := *c.Config
	resp := container.InspectResponse{
		ID:      c.ID,
		Created: formatTime(c.Created),
		Path:    c.Path,
		Args:    nonNil(c.Args),
		State: &container.State{
			Status:     st.Status,
			Running:    c.running(),
			Paused:     st.Status == container.StatePaused,
			Restarting: st.Status == container.StateRestarting,
			OOMKilled:  st.OOMKilled,
			Dead:       st.Status == container.StateDead,
			Pid:        st.Pid,
			ExitCode:   st.ExitCode,
			Error:      st.Error,
			StartedAt:  formatTime(st.StartedAt),
			FinishedAt: formatTime(st.FinishedAt),
			Health:     copyHealth(st.Health),
		},
		Image:           c.ImageID,
		ResolvConfPath:  filepath.Join(dir, "resolv.conf"),
		HostnamePath:    filepath.Join(dir, "hostname"),
		HostsPath:       filepath.Join(dir, "hosts"),
		LogPath:         s.recs.inspectLogPath(c),
		Name:            "/" + c.Name,
		RestartCount:    c.RestartCount,
		Platform:        "linux",
		ExecIDs:         nil,
		HostConfig:      &hc,
		Mounts:          s.spec.mountPointViews(c),
		Config:          &cfg,
		NetworkSettings: s.net.settings(c),
	}
	if ds, ok := s.Rootfs.(driverDataStore); ok {
		if name, data, err := ds.DriverData(c.ID); err == nil {
			resp.Driver, resp.GraphDriver = name, &storage.DriverData{Name: name, Data: data}
		}
	}
	return resp, nil
}

// driverDataStore is a RootfsStore that tells its driver and the
// directories of a container's layer (inspect's Driver and GraphDriver).
type driverDataStore interface {
	DriverData(id string) (name string, data map[string]string, err error)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// ListOptions are GET /containers/json's.
type ListOptions struct {
	All     bool
	Limit   int
	Filters map[string][]string
	// Size fills SizeRw and SizeRootFs (docker ps -s), which reads each
	// container's writable layer.
	Size bool
}

// List returns containers in Docker's summary shape, newest first. It
// reads the view, not the records: it takes no container's lock.
func (s *Containers) List(opts ListOptions) ([]container.Summary, error) {
	for k := range opts.Filters {
		switch k {
		case "status", "name", "id", "label", "ancestor", "exited", "before", "since", "network", "volume", "health", "is-task", "publish", "expose":
		default:
			return nil, errdefs.InvalidArgumentf("invalid filter '%s'", k)
		}
	}
	if err := validatePortFilters(opts.Filters); err != nil {
		return nil, err
	}
	var before, since time.Time
	if v := opts.Filters["before"]; len(v) > 0 {
		c, err := s.recs.get(v[0])
		if err != nil {
			return nil, err
		}
		before = c.Created
	}
	if v := opts.Filters["since"]; len(v) > 0 {
		c, err := s.recs.get(v[0])
		if err != nil {
			return nil, err
		}
		since = c.Created
	}
	out := []container.Summary{}
	sizer, _ := s.Rootfs.(rootfsSizer)
	if !opts.Size {
		sizer = nil
	}
	snaps := s.recs.view.all()
	linked := s.net.linkNames(snaps)
	for _, c := range snaps {
		sum, keep := s.summary(c, opts, before, since)
		if !keep {
			continue
		}
		sum.Names = append(sum.Names, linked[sum.ID]...)
		if sizer != nil {
			// A container being removed has no layer to size: it is
			// listed without, as Docker lists it.
			sum.SizeRw, sum.SizeRootFs, _ = sizer.RootfsSize(sum.ID)
		}
		out = append(out, sum)
		if opts.Limit > 0 && len(out) >= opts.Limit {
			break
		}
	}
	return out, nil
}

func (s *Containers) summary(c *Container, opts ListOptions, before, since time.Time) (container.Summary, bool) {
	f := opts.Filters
	status := c.State.Status
	if !opts.All && !c.running() && len(f["status"]) == 0 && len(f["exited"]) == 0 {
		return container.Summary{}, false
	}
	if v := f["status"]; len(v) > 0 && !contains(v, string(status)) {
		return container.Summary{}, false
	}
	if v := f["exited"]; len(v) > 0 && (status != container.StateExited || !contains(v, fmt.Sprint(c.State.ExitCode))) {
		return container.Summary{}, false
	}
	if v := f["name"]; len(v) > 0 && !anyMatch(v, func(p string) bool { return nameMatch(p, c.Name) }) {
		return container.Summary{}, false
	}
	if v := f["id"]; len(v) > 0 && !anyMatch(v, func(p string) bool { return strings.HasPrefix(c.ID, p) }) {
		return container.Summary{}, false
	}
	if v := f["ancestor"]; len(v) > 0 && !anyMatch(v, func(p string) bool {
		return p == c.Image || strings.TrimPrefix(p, "sha256:") == strings.TrimPrefix(c.ImageID, "sha256:") || strings.HasPrefix(strings.TrimPrefix(c.ImageID, "sha256:"), strings.TrimPrefix(p, "sha256:")) || p+":latest" == c.Image
	}) {
		return container.Summary{}, false
	}
	if v := f["health"]; len(v) > 0 && !contains(v, string(healthStatus(c))) {
		return container.Summary{}, false
	}
	if !portFilterMatch(c, f) || !isTaskMatch(f) {
		return container.Summary{}, false
	}
	if v := f["volume"]; len(v) > 0 && !anyMatch(v, func(p string) bool { return mountsVolume(c, p) }) {
		return container.Summary{}, false
	}
	for _, l := range f["label"] {
		k, v, hasV := strings.Cut(l, "=")
		got, ok := c.Config.Labels[k]
		if !ok || (hasV && got != v) {
			return container.Summary{}, false
		}
	}
	if !before.IsZero() && !c.Created.Before(before) {
		return container.Summary{}, false
	}
	if !since.IsZero() && !c.Created.After(since) {
		return container.Summary{}, false
	}
	cmd := strings.Join(append([]string{c.Path}, c.Args...), " ")
	sum := container.Summary{
		ID:      c.ID,
		Names:   []string{"/" + c.Name},
		Image:   c.Image,
		ImageID: c.ImageID,
		Command: cmd,
		Created: c.Created.Unix(),
		Ports:   []container.PortSummary{},
		Labels:  c.Config.Labels,
		State:   status,
		Status:  statusText(c),
		Health:  healthSummary(c),
		Mounts:  s.spec.mountPointViews(c),
	}
	if sum.Labels == nil {
		sum.Labels = map[string]string{}
	}
	sum.HostConfig.NetworkMode = string(c.HostConfig.NetworkMode)
	sum.HostConfig.Annotations = c.HostConfig.Annotations
	if sum.HostConfig.NetworkMode == "" {
		sum.HostConfig.NetworkMode = "bridge"
	}
	sum.NetworkSettings, sum.Ports = s.net.summary(c)
	if !onNetworks(f["network"], sum.NetworkSettings) {
		return container.Summary{}, false
	}
	return sum, true
}

// statusText is what `docker ps` shows in STATUS.
func statusText(c *Container) string {
	st := c.State
	switch st.Status {
	case container.StateRunning:
		return "Up " + units.HumanDuration(time.Since(st.StartedAt)) + healthText(st.Health)
	case container.StatePaused:
		return "Up " + units.HumanDuration(time.Since(st.StartedAt)) + " (Paused)"
	case container.StateRestarting:
		return fmt.Sprintf("Restarting (%d) %s ago", st.ExitCode, units.HumanDuration(time.Since(st.FinishedAt)))
	case container.StateExited:
		if st.FinishedAt.IsZero() {
			return "Created"
		}
		return fmt.Sprintf("Exited (%d) %s ago", st.ExitCode, units.HumanDuration(time.Since(st.FinishedAt)))
	case container.StateRemoving:
		return "Removal In Progress"
	case container.StateDead:
		return "Dead"
	}
	return "Created"
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func anyMatch(list []string, f func(string) bool) bool {
	for _, x := range list {
		if f(x) {
			return true
		}
	}
	return false
}

// Prune removes the stopped containers filters select (Docker's until,
// label and label!; none: all of them), and reports the space their
// writable layers took as what it reclaimed.
func (s *Containers) Prune(ctx context.Context, filters map[string][]string) (container.PruneReport, error) {
	f, err := image.ParseObjectPruneFilter(filters)
	if err != nil {
		return container.PruneReport{}, err
	}
	rep := container.PruneReport{ContainersDeleted: []string{}}
	sizer, _ := s.Rootfs.(layerSizer)
	for _, c := range s.recs.all() {
		c.mu.Lock()
		stopped := !c.running() && c.State.Status != container.StateRemoving && c.State.Status != container.StateRestarting
		wanted := f.Matches(c.Created, c.Config.Labels)
		c.mu.Unlock()
		if !stopped || !wanted {
			continue
		}
		// What the container wrote is what its removal frees, as Docker
		// counts it.
		var size int64
		if sizer != nil {
			size, _ = sizer.LayerSize(c.ID)
		}
		if err := s.Remove(ctx, c.ID, RemoveOptions{}); err == nil {
			rep.ContainersDeleted = append(rep.ContainersDeleted, c.ID)
			if size > 0 {
				rep.SpaceReclaimed += uint64(size)
			}
		}
	}
	return rep, nil
}

// hostConfigDefaults fills what Docker fills in a new container's host
// config, so inspect shows it: the IPC mode ("private", Docker's default
// daemon setting) and, unless the container is privileged or says
// otherwise, the masked and read-only paths it gets.
func hostConfigDefaults(hc *container.HostConfig) {
	if hc.IpcMode == "" {
		hc.IpcMode = "private"
	}
	if hc.ShmSize == 0 {
		hc.ShmSize = runtime.DefaultShmSize
	}
	if hc.Privileged {
		return
	}
	if hc.MaskedPaths == nil {
		hc.MaskedPaths = runtime.DefaultMaskedPaths()
	}
	if hc.ReadonlyPaths == nil {
		hc.ReadonlyPaths = runtime.DefaultReadonlyPaths()
	}
}

// settleWorkingDir checks a create's working directory and cleans it
// ("/app/" is "/app"), as Docker does.
func settleWorkingDir(cfg *container.Config) error {
	if cfg.WorkingDir == "" {
		return nil
	}
	if !filepath.IsAbs(cfg.WorkingDir) {
		return errdefs.InvalidArgumentf("the working directory '%s' is invalid, it needs to be an absolute path", cfg.WorkingDir)
	}
	cfg.WorkingDir = filepath.Clean(cfg.WorkingDir)
	return nil
}
