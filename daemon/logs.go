package daemon

import (
	"github.com/lodge-containers/lodge/daemon/logs"
)

// LogsOptions are GET /containers/{id}/logs's (logs.Options).
type LogsOptions = logs.Options

// logHost is what the log reader (daemon/logs) sees of the containers.
type logHost struct{ s *Containers }

var _ logs.Containers = logHost{}

// Log describes container ref's log from its record.
func (h logHost) Log(ref string) (logs.Source, error) {
	c, err := h.s.recs.get(ref)
	if err != nil {
		return logs.Source{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return h.source(c), nil
}

// source is c's log as logs reads it. Callers hold c.mu.
func (h logHost) source(c *Container) logs.Source {
	lc := c.HostConfig.LogConfig
	return logs.Source{Path: h.s.recs.logFileFor(c.ID, lc), Local: lc.Type == logDriverLocal, None: lc.Type == logDriverNone,
		TTY: c.Config.Tty, Running: c.running(), Exited: c.exitCh}
}
