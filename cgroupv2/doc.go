// Package cgroupv2 owns lodge's use of cgroups: finding where lodged sits,
// whether the machine is unified, hybrid or v1-only, and which controllers
// are delegated to the user (Detect); moving lodged into a leaf of its
// delegated cgroup (EnterLeaf); making each container's cgroup with its
// limits in Docker's units (Tree, Limits); and freezing, killing, sampling
// and removing a cgroup (Freeze, Kill, ReadStats, Remove). Every function
// takes the cgroupfs root or a cgroup's directory as a parameter, so tests
// point it at a fake tree. It does not decide policy (whether a limit that
// cannot be enforced is an error or a warning is the daemon's). Its one
// conversation with systemd is asking the user's manager, over D-Bus, for
// a transient scope with Delegate=yes where lodged starts in a cgroup not
// delegated to it (RequestScope, through the small Systemd interface).
package cgroupv2
