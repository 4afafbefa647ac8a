package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/blkiodev"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"

	"github.com/lodge-containers/lodge/cgroupv2"
	"github.com/lodge-containers/lodge/errdefs"
	"github.com/lodge-containers/lodge/runtime"
	"github.com/lodge-containers/lodge/shim"
)

// CgroupTree is where containers' cgroups live. (*cgroupv2.Tree fits.)
type CgroupTree interface {
	// Has reports whether a controller is delegated.
	Has(controller string) bool
	// Create makes a container's cgroup with its limits, returning its
	// directory; Update changes the limits of an existing one.
	Create(id string, l cgroupv2.Limits) (string, error)
	Update(id string, l cgroupv2.Limits) error
	ContainerDir(id string) string
	MonitorsDir() string
}

var _ CgroupTree = (*cgroupv2.Tree)(nil)

// limitsFrom reads a request's resources. What lodge cannot do at all is
// refused (501); what cgroup v2 has no knob for is a warning, as with
// Docker on cgroup v2.
func limitsFrom(r container.Resources) (cgroupv2.Limits, []string, error) {
	var warnings []string
	switch {
	case r.CgroupParent != "":
		return cgroupv2.Limits{}, nil, errdefs.NotImplementedf("--cgroup-parent: lodge places containers in its own delegated cgroup")
	case len(r.BlkioWeightDevice) > 0:
		return cgroupv2.Limits{}, nil, errdefs.NotImplementedf("--blkio-weight-device is not implemented")
	case r.CPURealtimePeriod != 0 || r.CPURealtimeRuntime != 0:
		return cgroupv2.Limits{}, nil, errdefs.InvalidArgumentf("cgroup v2 has no real-time CPU scheduler limits (--cpu-rt-period, --cpu-rt-runtime)")
	case len(r.DeviceCgroupRules) > 0:
		return cgroupv2.Limits{}, nil, errdefs.NotImplementedf("--device-cgroup-rule is not implemented: a rootless container gets bind mounts of device nodes, not a device cgroup")
	}
	if r.MemorySwappiness != nil && *r.MemorySwappiness != -1 {
		warnings = append(warnings, "Your kernel does not support memory swappiness capabilities (cgroup v2 has none): --memory-swappiness is ignored")
	}
	if r.OomKillDisable != nil && *r.OomKillDisable {
		warnings = append(warnings, "Your kernel does not support OomKillDisable (cgroup v2 has no switch for it): --oom-kill-disable is ignored")
	}
	l := cgroupv2.Limits{
		Memory: r.Memory, MemorySwap: r.MemorySwap, MemoryReservation: r.MemoryReservation,
		NanoCPUs: r.NanoCPUs, CPUQuota: r.CPUQuota, CPUPeriod: r.CPUPeriod, CPUShares: r.CPUShares,
		CpusetCpus: r.CpusetCpus, CpusetMems: r.CpusetMems, BlkioWeight: r.BlkioWeight,
	}
	if r.PidsLimit != nil && *r.PidsLimit > 0 {
		l.PidsLimit = *r.PidsLimit
	}
	var err error
	for _, t := range []struct {
		in  []*blkiodev.ThrottleDevice
		out *[]cgroupv2.Throttle
	}{{r.BlkioDeviceReadBps, &l.ReadBps}, {r.BlkioDeviceWriteBps, &l.WriteBps}, {r.BlkioDeviceReadIOps, &l.ReadIOps}, {r.BlkioDeviceWriteIOps, &l.WriteIOps}} {
		for _, d := range t.in {
			if d == nil {
				continue
			}
			th, terr := cgroupv2.DeviceThrottle(d.Path, d.Rate)
			if terr != nil {
				err = terr
			}
			*t.out = append(*t.out, th)
		}
	}
	if err != nil {
		return cgroupv2.Limits{}, nil, err
	}
	return l, warnings, l.Validate()
}

// cgroupCtl makes, fills and removes containers' cgroups in lodged's
// delegated tree; it knows nothing of the container records. Its zero
// value is a daemon without a tree: limits are refused or warned about,
// the rest does nothing.
type cgroupCtl struct {
	tree    CgroupTree // nil without a delegated cgroup v2
	warn    bool       // --cgroup-limits=warn
	summary string     // why there is no tree, for errors
	log     *slog.Logger
}

func newCgroupCtl(cfg ContainersConfig) cgroupCtl {
	return cgroupCtl{tree: cfg.Cgroups, warn: cfg.CgroupLimitsWarn, summary: cfg.CgroupSummary, log: cfg.Log}
}

// checkLimits decides what to do with limits lodged cannot enforce: refuse
// them, naming the missing controller and how to get it, or (with
// --cgroup-limits=warn) run without them and say so.
func (g cgroupCtl) checkLimits(l cgroupv2.Limits) ([]string, error) {
	var warnings []string
	for _, c := range l.Controllers() {
		if g.tree != nil && g.tree.Has(c) {
			continue
		}
		if !g.warn {
			return nil, cgroupv2.MissingController(c)
		}
		warnings = append(warnings, fmt.Sprintf("the %s cgroup controller is not delegated to lodged: the %s limits are not enforced (lodged --cgroup-limits=warn)", c, c))
	}
	return warnings, nil
}

// limitWarnings checks a new container's resources: an error refuses it,
// warnings go in the create response.
func (g cgroupCtl) limitWarnings(r container.Resources) ([]string, error) {
	l, warnings, err := limitsFrom(r)
	if err != nil {
		return nil, err
	}
	more, err := g.checkLimits(l)
	return append(warnings, more...), err
}

// has is the tree's Has, false without a tree.
func (g cgroupCtl) has(c string) bool { return g.tree != nil && g.tree.Has(c) }

// create makes a starting container's cgroup, with the limits of r that
// can be enforced, and tells its monitor.
func (g cgroupCtl) create(id string, r container.Resources, mcfg *shim.MonitorConfig) error {
	if g.tree == nil {
		return nil
	}
	l, _, err := limitsFrom(r)
	if err != nil {
		return err
	}
	dir, err := g.tree.Create(id, l.Only(g.has))
	if err != nil {
		return fmt.Errorf("creating the container's cgroup: %w", err)
	}
	mcfg.Cgroup, mcfg.MonitorCgroup = dir, g.tree.MonitorsDir()
	return nil
}

// dropCgroup kills what is in a container's cgroup (a paused one is
// thawed first) and removes it: for a container that did not start, one
// that ended without its monitor, and at removal, whatever the record
// says, so that nothing of a removed container is left running.
func (g cgroupCtl) drop(id string) {
	if g.tree == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dir := g.tree.ContainerDir(id)
	if !dirExists(dir) {
		return
	}
	// Thawed first: a frozen cgroup's processes die only once thawed.
	if err := cgroupv2.Freeze(ctx, dir, false); err != nil {
		g.log.Warn("thawing the container's cgroup", "id", id, "err", err)
	}
	if err := cgroupv2.Kill(ctx, dir); err != nil {
		g.log.Warn("killing the container's cgroup", "id", id, "err", err)
	}
	if err := cgroupv2.Remove(ctx, dir); err != nil {
		g.log.Warn("removing the container's cgroup", "id", id, "err", err)
	}
}

func dirExists(dir string) bool {
	fi, err := os.Stat(dir)
	return err == nil && fi.IsDir()
}

// CgroupControl signals, freezes and kills running containers and changes
// their limits: pause, unpause and update for the API, and for the
// lifecycle the kill of a whole container, the thaw before a stop signal,
// the end of a cgroup whose monitor is gone, and the freeze of a commit.
// It reads the records through the store and works on their cgroups
// through cgroupCtl.
type CgroupControl struct {
	recs *store
	cg   cgroupCtl
	ev   *Events
	log  *slog.Logger
}

func newCgroupControl(recs *store, cg cgroupCtl, ev *Events, log *slog.Logger) *CgroupControl {
	if log == nil {
		log = slog.Default()
	}
	return &CgroupControl{recs: recs, cg: cg, ev: ev, log: log}
}

// killAll kills every process of a running container: its init (through
// its monitor, or itself once the monitor is gone: with its own pid
// namespace, that kills every process of it even without a cgroup), and
// its whole cgroup when there is one. The init's signal goes first: a
// monitor that adopted the container learns its exit code only from the
// signal it sent.
func (x *CgroupControl) killAll(c *Container, ctl *runtime.Ctl) {
	if err := x.signal(c, ctl, syscall.SIGKILL); err != nil {
		// The cgroup's kill below still reaches it when there is one.
		x.log.Warn("killing the container's init", "id", c.ID, "err", err)
	}
	if x.cg.tree != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := cgroupv2.Kill(ctx, x.cg.tree.ContainerDir(c.ID)); err != nil {
			x.log.Warn("killing the container's cgroup", "id", c.ID, "err", err)
		}
		cancel()
	}
}

// joinCgroup moves an exec'd process into its container's cgroup. The
// runtime started it already (runc's cgroup v1 manager cannot place it in
// lodge's v2 cgroup): what it forked in its first moments stays outside,
// still inside the container's pid namespace, which dies with the init.
func (g cgroupCtl) join(id string, pid int) {
	if g.tree == nil || pid <= 0 {
		return
	}
	if err := cgroupv2.Join(g.tree.ContainerDir(id), pid); err != nil {
		g.log.Debug("exec not moved into the container's cgroup", "id", id, "pid", pid, "err", err)
	}
}

// noFreezer is the error for pause on a machine where lodged has no
// delegated cgroup v2.
func (g cgroupCtl) noFreezer() error {
	return errdefs.Unavailablef("pause needs the cgroup v2 freezer in a cgroup delegated to lodged, and lodged has none (%s). "+
		"Start lodged in a delegated cgroup, e.g. with systemd: systemd-run --user --scope -p Delegate=yes lodged", g.summary)
}

// Pause freezes every process of a running container (cgroup.freeze).
func (x *CgroupControl) Pause(ctx context.Context, ref string) error {
	return x.setFrozen(ctx, ref, true)
}

// Unpause thaws a paused container.
func (x *CgroupControl) Unpause(ctx context.Context, ref string) error {
	return x.setFrozen(ctx, ref, false)
}

func (x *CgroupControl) setFrozen(ctx context.Context, ref string, frozen bool) error {
	c, err := x.recs.get(ref)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case !c.running():
		return errdefs.Conflictf("Container %s is not running", c.ID)
	case frozen && c.State.Paused:
		return errdefs.Conflictf("Container %s is already paused", c.ID)
	case !frozen && !c.State.Paused:
		return errdefs.Conflictf("Container %s is not paused", c.ID)
	case x.cg.tree == nil:
		return x.cg.noFreezer()
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := cgroupv2.Freeze(ctx, x.cg.tree.ContainerDir(c.ID), frozen); err != nil {
		return err
	}
	c.State.Paused = frozen
	c.State.Status = container.StateRunning
	action := events.ActionUnPause
	if frozen {
		c.State.Status, action = container.StatePaused, events.ActionPause
	}
	x.ev.forContainer(c, action)
	return x.recs.save(c)
}

// thawForSignal thaws a paused container so that the signal it is about
// to get is handled (SIGKILL needs no thaw, a handler does), as Docker
// does. Callers hold c.mu.
func (x *CgroupControl) thawForSignal(c *Container) {
	if !c.State.Paused || x.cg.tree == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cgroupv2.Freeze(ctx, x.cg.tree.ContainerDir(c.ID), false); err == nil {
		c.State.Paused = false
		c.State.Status = container.StateRunning
		x.recs.keep(c)
	}
}

// Update changes a container's limits (and restart policy): recorded for
// its next start, and applied at once when it runs.
func (x *CgroupControl) Update(ctx context.Context, ref string, u container.UpdateConfig) (container.UpdateResponse, error) {
	c, err := x.recs.get(ref)
	if err != nil {
		return container.UpdateResponse{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	r := mergeResources(c.HostConfig.Resources, u.Resources)
	l, warnings, err := limitsFrom(r)
	if err != nil {
		return container.UpdateResponse{}, err
	}
	changed, _, _ := limitsFrom(u.Resources)
	more, err := x.cg.checkLimits(changed)
	if err != nil {
		return container.UpdateResponse{}, err
	}
	warnings = append(warnings, more...)
	if u.RestartPolicy.Name != "" {
		if c.HostConfig.AutoRemove && u.RestartPolicy.Name != container.RestartPolicyDisabled {
			return container.UpdateResponse{}, errdefs.Conflictf("Restart policy cannot be updated because AutoRemove is enabled for the container")
		}
		c.HostConfig.RestartPolicy = u.RestartPolicy
	}
	if u.PidsLimit != nil && *u.PidsLimit <= 0 && x.cg.has("pids") {
		l.PidsLimit = -1 // back to no limit: pids.max "max"
	}
	if c.running() && x.cg.tree != nil {
		if err := x.cg.tree.Update(c.ID, l.Only(x.cg.has)); err != nil {
			return container.UpdateResponse{}, fmt.Errorf("Cannot update container %s: %w", c.ID, err)
		}
	}
	c.HostConfig.Resources = r
	if err := x.recs.save(c); err != nil {
		return container.UpdateResponse{}, err
	}
	x.ev.forContainer(c, events.ActionUpdate)
	return container.UpdateResponse{Warnings: nonNil(warnings)}, nil
}

// mergeResources lays an update's set fields over a container's resources,
// as Docker does: a zero value leaves the field as it was.
func mergeResources(old, u container.Resources) container.Resources {
	r := old
	setInt := func(dst *int64, v int64) {
		if v != 0 {
			*dst = v
		}
	}
	setInt(&r.Memory, u.Memory)
	setInt(&r.MemorySwap, u.MemorySwap)
	setInt(&r.MemoryReservation, u.MemoryReservation)
	setInt(&r.NanoCPUs, u.NanoCPUs)
	setInt(&r.CPUQuota, u.CPUQuota)
	setInt(&r.CPUPeriod, u.CPUPeriod)
	setInt(&r.CPUShares, u.CPUShares)
	if u.NanoCPUs != 0 {
		r.CPUQuota, r.CPUPeriod = 0, 0
	}
	if u.CPUQuota != 0 || u.CPUPeriod != 0 {
		r.NanoCPUs = 0
	}
	if u.Memory != 0 && u.MemorySwap == 0 && old.MemorySwap > 0 && old.MemorySwap < u.Memory {
		r.MemorySwap = 0 // the old total would be below the new memory
	}
	if u.CpusetCpus != "" {
		r.CpusetCpus = u.CpusetCpus
	}
	if u.CpusetMems != "" {
		r.CpusetMems = u.CpusetMems
	}
	if u.BlkioWeight != 0 {
		r.BlkioWeight = u.BlkioWeight
	}
	if u.PidsLimit != nil {
		r.PidsLimit = u.PidsLimit
	}
	return r
}
