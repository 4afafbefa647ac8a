// Package cgroupv2 owns lodge's use of cgroups: finding where lodged sits,
// whether the machine is unified, hybrid or v1-only, and which controllers
// are delegated to the user. Every function takes the cgroupfs root as a
// parameter so tests point it at a fake tree. It does not decide policy
// (whether a refused limit is an error or a warning is the daemon's).
package cgroupv2
