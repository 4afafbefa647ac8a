package daemon

import (
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/lodge-containers/lodge/daemon/health"
)

// startHealth begins a started container's healthcheck, when it has one:
// its status is "starting" until the first probes say otherwise, and the
// probes stop when the container exits. Callers hold c.mu.
func (l *Lifecycle) startHealth(c *Container) {
	hc := c.Config.Healthcheck
	if health.Args(hc) == nil {
		return
	}
	if c.State.Health == nil || c.State.Health.Status == "" {
		c.State.Health = &container.Health{Status: container.Starting}
	}
	l.health.Start(c.ID, hc, c.State.StartedAt, c.exitCh)
}

// healthHost is what the prober (daemon/health) sees of the containers.
type healthHost struct{ s *Containers }

var _ health.Containers = healthHost{}

// Record changes a running container's health under its lock, and saves
// it; a change of status is published.
func (h healthHost) Record(id string, fn func(*container.Health) bool) (container.HealthStatus, bool) {
	c, err := h.s.recs.get(id)
	if err != nil {
		return "", false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.running() || c.State.Health == nil {
		return "", false
	}
	if fn == nil {
		return c.State.Health.Status, true
	}
	if fn(c.State.Health) {
		h.s.Events.forContainer(c, events.Action("health_status: "+string(c.State.Health.Status)))
	}
	h.s.recs.keep(c)
	return c.State.Health.Status, true
}

// healthText is what `docker ps` adds to a running container's status.
func healthText(h *container.Health) string {
	switch {
	case h == nil:
		return ""
	case h.Status == container.Starting:
		return " (health: starting)"
	}
	return " (" + string(h.Status) + ")"
}

// copyHealth is a copy of h for a response, which is encoded after the
// container's lock is released.
func copyHealth(h *container.Health) *container.Health {
	if h == nil {
		return nil
	}
	cp := *h
	cp.Log = make([]*container.HealthcheckResult, len(h.Log))
	for i, r := range h.Log {
		r := *r
		cp.Log[i] = &r
	}
	return &cp
}

// ociImage is an image's config as the OCI spec has it (DockerOCIImage
// shadows the OCI config with Docker's, which embeds it).
func ociImage(img *dockerspec.DockerOCIImage) *ocispec.Image {
	if img == nil {
		return nil
	}
	oci := img.Image
	oci.Config = img.Config.ImageConfig
	return &oci
}

// mergeHealthcheck is a new container's healthcheck: the request's, with
// what it leaves unset taken from the image's HEALTHCHECK, as Docker
// merges them.
func mergeHealthcheck(req *container.HealthConfig, img *dockerspec.DockerOCIImage) *container.HealthConfig {
	var fromImage *container.HealthConfig
	if img != nil {
		fromImage = img.Config.Healthcheck
	}
	if req == nil || fromImage == nil {
		if req != nil {
			return req
		}
		return fromImage
	}
	out := *req
	if len(out.Test) == 0 {
		out.Test = fromImage.Test
	}
	if out.Interval == 0 {
		out.Interval = fromImage.Interval
	}
	if out.Timeout == 0 {
		out.Timeout = fromImage.Timeout
	}
	if out.StartPeriod == 0 {
		out.StartPeriod = fromImage.StartPeriod
	}
	if out.StartInterval == 0 {
		out.StartInterval = fromImage.StartInterval
	}
	if out.Retries == 0 {
		out.Retries = fromImage.Retries
	}
	return &out
}

// healthStatus is a container's health for `ps --filter health=`: "none"
// without a healthcheck or when it is not running. Callers hold c.mu.
func healthStatus(c *Container) container.HealthStatus {
	if h := c.State.Health; h != nil && c.running() {
		return h.Status
	}
	return container.NoHealthcheck
}

// healthSummary is the list's view of a container's health. Callers hold
// c.mu.
func healthSummary(c *Container) *container.HealthSummary {
	if h := c.State.Health; h != nil && c.running() {
		return &container.HealthSummary{Status: h.Status, FailingStreak: h.FailingStreak}
	}
	return nil
}
