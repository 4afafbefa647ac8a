package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/lodge-containers/lodge/cgroupv2"
)

// What came of asking systemd for a scope travels from the foreground
// process, through the keeper, to every daemon the keeper starts: the
// daemon's cgroup is the keeper's, decided when the keeper started.
const (
	envCgroupScope = "_LODGE_CGROUP_SCOPE"
	envCgroupNote  = "_LODGE_CGROUP_NOTE"
)

// cgroupManager is --cgroup-manager, else daemon.json's cgroup-manager,
// else auto.
func cgroupManager(o options, fc fileConfig) (cgroupv2.Manager, error) {
	v, where := o.cgroupManager, "--cgroup-manager"
	if v == "" {
		v, where = fc.CgroupManager, "daemon.json cgroup-manager"
	}
	m, err := cgroupv2.ParseManager(v)
	if err != nil {
		return "", fmt.Errorf("%s: %w", where, err)
	}
	return m, nil
}

// askSystemdScope runs in the foreground process, in the host's user
// namespace, just before it starts the keeper: when m says so it asks the
// user's systemd for a delegated scope and moves into its leaf, so that the
// keeper, the daemons and the containers all start there. It fails only
// when m is systemd and no scope was had.
func askSystemdScope(m cgroupv2.Manager) error {
	st, _ := cgroupv2.Detect(cgroupRoot, "/proc/self/cgroup")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sc, err := cgroupv2.RequestScope(ctx, cgroupv2.ScopeRequest{
		Manager: m, State: st, Bus: cgroupv2.UserBus(os.Getenv), Dial: cgroupv2.DialSystemd,
		PID: os.Getpid(), UID: os.Getuid(),
	})
	if err != nil {
		return err
	}
	if sc.Unit != "" {
		if err := cgroupv2.EnterLeaf(cgroupRoot, "/proc/self/cgroup"); err != nil {
			sc.Note += fmt.Sprintf(" (moving into its leaf failed: %v)", err)
		}
	}
	if err := os.Setenv(envCgroupScope, sc.Unit); err != nil {
		return err
	}
	return os.Setenv(envCgroupNote, sc.Note)
}

// cgroupScope is what the foreground process learned, as the daemon sees
// it.
func cgroupScope() cgroupv2.Scope {
	return cgroupv2.Scope{Unit: os.Getenv(envCgroupScope), Note: os.Getenv(envCgroupNote)}
}

// checkCgroupScope refuses --cgroup-manager systemd in a daemon that did
// not get its cgroup from systemd: the keeper it runs under was started
// earlier without one, and only a new keeper can move.
func checkCgroupScope(m cgroupv2.Manager, st cgroupv2.State, sc cgroupv2.Scope) error {
	if m != cgroupv2.ManagerSystemd || sc.In(st) {
		return nil
	}
	return fmt.Errorf("--cgroup-manager systemd: lodged runs in %s, not in a scope systemd delegated, because its namespace keeper was started earlier without one; "+
		"stop lodged and its containers (lodge daemon stop), then start it again", st.Own)
}
