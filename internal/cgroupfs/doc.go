// Package cgroupfs reads and writes the interface files of one cgroup v2
// directory: its processes, its events, freezing, killing and removing
// it. It is what both cgroupv2 (the daemon's cgroups) and the shim (which
// ends a container's cgroup beside every running container) need, and it
// imports nothing but the standard library and errdefs: no D-Bus, no
// systemd, so that the shim, which each running container pays for, links
// none of them. Deciding where cgroups go and what limits they get is
// cgroupv2's.
package cgroupfs
