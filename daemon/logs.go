package daemon

import (
	"errors"
	"fmt"

	"github.com/lodge-containers/lodge/daemon/logs"
	"github.com/lodge-containers/lodge/errdefs"
	"github.com/lodge-containers/lodge/runtime"
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
	return logs.Source{Path: h.s.recs.logFileFor(c.ID, lc), Local: lc.Type == logDriverLocal, CRI: lc.Type == logDriverK8s, None: lc.Type == logDriverNone,
		TTY: c.Config.Tty, Running: c.running(), Exited: c.exitCh, Attrs: logAttrs(c)}
}

// ReopenLog has a running container's monitor close its log file and
// open the one at its path again: the kubelet renamed the file to rotate
// it (the CRI's ReopenContainerLog). A container that does not run is a
// conflict, as containerd refuses it.
func (l *Lifecycle) ReopenLog(ref string) error {
	c, err := l.recs.get(ref)
	if err != nil {
		return err
	}
	c.mu.Lock()
	running, none := c.running(), c.HostConfig.LogConfig.Type == logDriverNone
	c.mu.Unlock()
	if !running {
		return errdefs.Conflictf("container %s is not running: no log to reopen", c.ID)
	}
	if none {
		return nil
	}
	ctl := runtime.NewCtl(l.recs.sockDir(c.ID))
	defer ctl.Close()
	if err := ctl.ReopenLog(); err != nil {
		if errors.Is(err, runtime.ErrMonitorGone) || err.Error() == "container is not running" {
			return errdefs.Conflictf("container %s is not running: no log to reopen", c.ID)
		}
		return fmt.Errorf("reopening the log of container %s: %w", c.ID, err)
	}
	return nil
}
