package health

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/lodge-containers/lodge/daemon/stream"
	"github.com/lodge-containers/lodge/errdefs"
)

// Containers is what probing needs of the container service.
type Containers interface {
	// Record changes running container id's health with fn under the
	// container's lock: when fn reports a change of status it publishes
	// Docker's health_status event, and it saves the record. With a nil
	// fn it only reads. It returns the health's status after, and false
	// (and "") once the container no longer runs or has no health.
	Record(id string, fn func(h *container.Health) (changed bool)) (container.HealthStatus, bool)
}

// Execs runs the probes: the exec table (*exec.Service fits).
type Execs interface {
	ExecCreate(ctx context.Context, ref string, req container.ExecCreateRequest) (string, error)
	ExecStart(ctx context.Context, id string, consoleSize *[2]uint, client stream.Stream) error
	ExecInspect(id string) (container.ExecInspectResponse, error)
	// Kill signals a started exec's process; Forget drops the exec.
	Kill(id string, sig syscall.Signal)
	Forget(id string)
}

// Prober runs containers' healthchecks. It is safe for concurrent use.
type Prober struct {
	// life is the daemon's: every probe loop ends with it.
	life       context.Context
	containers Containers
	execs      Execs
}

// New makes the prober. Its probe loops end when life does.
func New(life context.Context, containers Containers, execs Execs) *Prober {
	return &Prober{life: life, containers: containers, execs: execs}
}

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

// Args is the command a healthcheck runs: nil when the container has
// none (or NONE).
func Args(hc *container.HealthConfig) []string {
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

// Start probes a started container's healthcheck, hc, until the
// container exits (exited is closed) or the daemon shuts down; started is
// when it started. It does nothing for a container without a healthcheck
// (see Args). The caller has set the container's health to starting.
func (s *Prober) Start(id string, hc *container.HealthConfig, started time.Time, exited <-chan struct{}) {
	args := Args(hc)
	if args == nil {
		return
	}
	p := probe{args: args, interval: hc.Interval, timeout: hc.Timeout, retries: hc.Retries,
		startPeriod: hc.StartPeriod, startInterval: hc.StartInterval, started: started}
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
	go s.loop(id, exited, p)
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

// loop probes container id until it exits or the daemon shuts down.
func (s *Prober) loop(id string, exited <-chan struct{}, p probe) {
	t := time.NewTimer(p.next(time.Since(p.started), container.Starting))
	defer t.Stop()
	for {
		select {
		case <-exited:
			return
		case <-s.life.Done():
			return
		case <-t.C:
		}
		status := s.once(id, p)
		if status == "" {
			return
		}
		t.Reset(p.next(time.Since(p.started), status))
	}
}

// once runs one probe and records it; it returns the container's
// health after it, or "" when the container no longer runs.
func (s *Prober) once(id string, p probe) container.HealthStatus {
	res, err := s.run(id, p)
	if s.life.Err() != nil {
		return "" // a probe the shutdown cut short says nothing of the container
	}
	if err != nil {
		// paused: no result, as Docker skips it
		status, _ := s.containers.Record(id, nil)
		return status
	}
	status, _ := s.containers.Record(id, func(h *container.Health) bool {
		return recordProbe(h, res, p, time.Since(p.started) < p.startPeriod)
	})
	return status
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

// run runs the check once as an exec, killing it at the timeout.
func (s *Prober) run(id string, p probe) (*container.HealthcheckResult, error) {
	ctx := s.life
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
