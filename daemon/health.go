package daemon

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"syscall"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/lodge-containers/lodge/errdefs"
)

// Docker's healthcheck defaults, and how much of a probe's output and how
// many results a container keeps.
const (
	defaultProbeInterval = 30 * time.Second
	defaultProbeTimeout  = 30 * time.Second
	defaultProbeRetries  = 3
	defaultStartInterval = 5 * time.Second
	maxProbeOutput       = 4096
	maxProbeResults      = 5
)

// probeArgs is the command a healthcheck runs: nil when the container has
// none (or NONE).
func probeArgs(hc *container.HealthConfig) []string {
	if hc == nil || len(hc.Test) == 0 {
		return nil
	}
	switch hc.Test[0] {
	case "CMD":
		return hc.Test[1:]
	case "CMD-SHELL":
		if len(hc.Test) > 1 {
			return []string{"/bin/sh", "-c", hc.Test[1]}
		}
	}
	return nil
}

// startHealth begins a started container's healthcheck, when it has one:
// its status is "starting" until the first probes say otherwise, and the
// probes stop when the container exits. Callers hold c.mu.
func (s *Containers) startHealth(c *Container) {
	hc := c.Config.Healthcheck
	args := probeArgs(hc)
	if args == nil {
		return
	}
	if c.State.Health == nil || c.State.Health.Status == "" {
		c.State.Health = &container.Health{Status: container.Starting}
	}
	p := probe{args: args, interval: hc.Interval, timeout: hc.Timeout, retries: hc.Retries,
		startPeriod: hc.StartPeriod, startInterval: hc.StartInterval, started: c.State.StartedAt}
	if p.interval <= 0 {
		p.interval = defaultProbeInterval
	}
	if p.startInterval <= 0 {
		p.startInterval = defaultStartInterval
	}
	if p.timeout <= 0 {
		p.timeout = defaultProbeTimeout
	}
	if p.retries <= 0 {
		p.retries = defaultProbeRetries
	}
	go s.probeLoop(c, c.exitCh, p)
}

type probe struct {
	args                           []string
	interval, timeout, startPeriod time.Duration
	// startInterval spaces the probes in the start period while the
	// container is still starting (compose's start_interval), so a
	// service can turn healthy quickly without probing it often later.
	startInterval time.Duration
	retries       int
	started       time.Time
}

// next is how long to wait before the next probe, sinceStart after the
// container started, its health being status.
func (p probe) next(sinceStart time.Duration, status container.HealthStatus) time.Duration {
	if sinceStart < p.startPeriod && status == container.Starting {
		return p.startInterval
	}
	return p.interval
}

func (s *Containers) probeLoop(c *Container, exited <-chan struct{}, p probe) {
	t := time.NewTimer(p.next(time.Since(p.started), container.Starting))
	defer t.Stop()
	for {
		select {
		case <-exited:
			return
		case <-s.lifetime().Done():
			return
		case <-t.C:
		}
		status := s.probeOnce(c, p)
		if status == "" {
			return
		}
		t.Reset(p.next(time.Since(p.started), status))
	}
}

// probeOnce runs one probe and records it; it returns the container's
// health after it, or "" when the container no longer runs.
func (s *Containers) probeOnce(c *Container, p probe) container.HealthStatus {
	res, err := s.runProbe(c.ID, p)
	if s.lifetime().Err() != nil {
		return "" // a probe the shutdown cut short says nothing of the container
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.running() || c.State.Health == nil {
		return ""
	}
	if err != nil {
		return c.State.Health.Status // paused: no result, as Docker skips it
	}
	if changed := recordProbe(c.State.Health, res, p, time.Since(p.started) < p.startPeriod); changed {
		s.emit(c, events.Action("health_status: "+string(c.State.Health.Status)))
	}
	s.keep(c)
	return c.State.Health.Status
}

// recordProbe adds a result to a container's health and reports whether
// its status changed. A failure in the start period does not count
// toward the retries.
func recordProbe(h *container.Health, res *container.HealthcheckResult, p probe, inStartPeriod bool) bool {
	h.Log = append(h.Log, res)
	if len(h.Log) > maxProbeResults {
		h.Log = h.Log[len(h.Log)-maxProbeResults:]
	}
	old := h.Status
	if res.ExitCode == 0 {
		h.FailingStreak = 0
		h.Status = container.Healthy
	} else if !inStartPeriod || h.Status != container.Starting {
		h.FailingStreak++
		if h.FailingStreak >= p.retries {
			h.Status = container.Unhealthy
		}
	}
	return h.Status != old
}

// runProbe runs the check once as an exec, killing it at the timeout.
func (s *Containers) runProbe(id string, p probe) (*container.HealthcheckResult, error) {
	ctx := s.lifetime()
	execID, err := s.execs.ExecCreate(ctx, id, container.ExecCreateRequest{Cmd: p.args, AttachStdout: true, AttachStderr: true})
	if err != nil {
		return nil, err
	}
	defer s.execs.Forget(execID)
	res := &container.HealthcheckResult{Start: time.Now().UTC()}
	out := &probeOutput{}
	done := make(chan error, 1)
	go func() { done <- s.execs.ExecStart(ctx, execID, nil, out) }()
	timedOut := false
	select {
	case err = <-done:
	case <-time.After(p.timeout):
		timedOut = true
		s.execs.Kill(execID, syscall.SIGKILL)
		err = <-done
	}
	res.End = time.Now().UTC()
	if err != nil {
		if errors.Is(err, errdefs.ErrConflict) {
			return nil, err
		}
		res.ExitCode, res.Output = -1, err.Error()
		return res, nil
	}
	insp, err := s.execs.ExecInspect(execID)
	if err != nil {
		return nil, err
	}
	res.ExitCode = -1
	if insp.ExitCode != nil {
		res.ExitCode = *insp.ExitCode
	}
	res.Output = out.text()
	if timedOut {
		res.ExitCode = -1
		res.Output = "Health check exceeded timeout (" + p.timeout.String() + ")"
	}
	return res, nil
}

// probeOutput collects a probe's framed stdout and stderr.
type probeOutput struct{ buf bytes.Buffer }

func (o *probeOutput) Read([]byte) (int, error) { return 0, io.EOF }

func (o *probeOutput) Write(p []byte) (int, error) {
	if o.buf.Len() < 2*maxProbeOutput+64 {
		o.buf.Write(p)
	}
	return len(p), nil
}

// text is the frames' payloads, cut at maxProbeOutput bytes.
func (o *probeOutput) text() string {
	b := o.buf.Bytes()
	var out []byte
	for len(b) >= 8 {
		n := int(binary.BigEndian.Uint32(b[4:8]))
		b = b[8:]
		if n > len(b) {
			n = len(b)
		}
		out = append(out, b[:n]...)
		b = b[n:]
	}
	if len(out) > maxProbeOutput {
		out = out[:maxProbeOutput]
	}
	return string(out)
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
