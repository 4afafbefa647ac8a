package daemon

import (
	"context"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/lodge-containers/lodge/shim"
)

// shouldRestart applies the restart policy to an exit. Callers hold c.mu.
func (l *Lifecycle) shouldRestart(c *Container, st shim.ExitStatus) bool {
	if c.ManualStop {
		return false
	}
	p := c.HostConfig.RestartPolicy
	switch p.Name {
	case container.RestartPolicyAlways, container.RestartPolicyUnlessStopped:
		return true
	case container.RestartPolicyOnFailure:
		return st.ExitCode != 0 && (p.MaximumRetryCount == 0 || c.RestartCount < p.MaximumRetryCount)
	}
	return false
}

// restartBackoff doubles from 100 ms to a minute, as Docker's does, and
// starts over once a container has run for 10 s.
func restartBackoff(c *Container) time.Duration {
	if c.State.FinishedAt.Sub(c.State.StartedAt) > 10*time.Second {
		return 100 * time.Millisecond
	}
	d := 100 * time.Millisecond
	for i := 0; i < c.RestartCount && d < time.Minute; i++ {
		d *= 2
	}
	if d > time.Minute {
		d = time.Minute
	}
	return d
}

func (l *Lifecycle) restartAfterExit(c *Container) {
	c.mu.Lock()
	c.State.Status = container.StateRestarting
	delay := restartBackoff(c)
	l.recs.keep(c)
	c.mu.Unlock()
	time.Sleep(delay)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.State.Status != container.StateRestarting || c.ManualStop {
		if c.State.Status == container.StateRestarting {
			c.State.Status = container.StateExited
			l.recs.keep(c)
		}
		return
	}
	c.RestartCount++
	if err := l.startLocked(context.Background(), c); err != nil {
		c.State.Status = container.StateExited
		l.recs.keep(c)
		l.log.Warn("restart failed", "id", c.ID, "err", err)
	}
}

// StartOnBoot starts the containers whose policy says so when the daemon
// starts: always, and unless-stopped unless the user stopped them.
func (l *Lifecycle) StartOnBoot(ctx context.Context) {
	for _, c := range l.recs.all() {
		c.mu.Lock()
		p := c.HostConfig.RestartPolicy.Name
		want := !c.running() && c.HasBeenStartedBefore &&
			(p == container.RestartPolicyAlways || (p == container.RestartPolicyUnlessStopped && !c.ManualStop))
		if want {
			if err := l.startLocked(ctx, c); err != nil {
				l.log.Warn("starting container on boot", "id", c.ID, "err", err)
			}
		}
		c.mu.Unlock()
	}
}
