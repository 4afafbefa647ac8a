package daemon

import (
	"github.com/lodge-containers/lodge/daemon/stats"
)

// StatsOptions are GET /containers/{id}/stats's (stats.Options).
type StatsOptions = stats.Options

// statsHost is what docker stats and top (daemon/stats) see of the
// containers.
type statsHost struct{ s *Containers }

var _ stats.Containers = statsHost{}

// Proc reads container ref's name and running init.
func (h statsHost) Proc(ref string) (stats.Target, error) {
	c, err := h.s.recs.get(ref)
	if err != nil {
		return stats.Target{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return stats.Target{ID: c.ID, Name: c.Name, Running: c.running(), Pid: c.State.Pid}, nil
}

// newSampler makes docker stats and top's service over s.
func newSampler(s *Containers) *stats.Sampler {
	var dirs stats.CgroupDirs
	if s.Cgroups != nil { // a nil CgroupTree must stay a nil interface
		dirs = s.Cgroups
	}
	return stats.New(statsHost{s}, dirs, s.CgroupSummary)
}
