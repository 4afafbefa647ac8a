package daemon

import (
	"regexp"

	"github.com/moby/moby/api/types/network"

	"github.com/lodge-containers/lodge/errdefs"
)

// portRanges parses `ps --filter publish=|expose=` values: "80",
// "80/udp", "8000-8080/tcp".
func portRanges(vals []string) ([]network.PortRange, error) {
	var out []network.PortRange
	for _, v := range vals {
		pr, err := network.ParsePortRange(v)
		if err != nil {
			return nil, errdefs.InvalidArgumentf("invalid port filter %q: %v", v, err)
		}
		out = append(out, pr)
	}
	return out, nil
}

// validatePortFilters checks a list's port filters before any container
// is looked at.
func validatePortFilters(f map[string][]string) error {
	for _, k := range []string{"publish", "expose"} {
		if _, err := portRanges(f[k]); err != nil {
			return err
		}
	}
	return nil
}

// portFilterMatch tells whether a container passes the publish and expose
// filters: a published port is a container port with a host binding (or
// every exposed one with -P), an exposed port one the image or request
// exposes or publishes. Callers hold c.mu.
func portFilterMatch(c *Container, f map[string][]string) bool {
	published := map[network.Port]bool{}
	for p := range c.HostConfig.PortBindings {
		published[p] = true
	}
	exposed := map[network.Port]bool{}
	for p := range c.Config.ExposedPorts {
		exposed[p] = true
		if c.HostConfig.PublishAllPorts {
			published[p] = true
		}
	}
	for p := range published {
		exposed[p] = true
	}
	return portsIn(f["publish"], published) && portsIn(f["expose"], exposed)
}

// portsIn tells whether any of the ports is in any of the ranges; no
// ranges match everything.
func portsIn(vals []string, ports map[network.Port]bool) bool {
	ranges, err := portRanges(vals)
	if err != nil || len(ranges) == 0 {
		return err == nil
	}
	for p := range ports {
		for _, r := range ranges {
			if p.Proto() == r.Proto() && p.Num() >= r.Start() && p.Num() <= r.End() {
				return true
			}
		}
	}
	return false
}

// isTaskMatch: lodge has no swarm, so no container is a task.
func isTaskMatch(f map[string][]string) bool {
	for _, v := range f["is-task"] {
		if v == "true" || v == "1" {
			return false
		}
	}
	return true
}

// nameMatch applies a name filter as Docker does: the value is a regular
// expression (testcontainers asks for "^name$"), tried on the name with
// and without its leading "/"; a value that does not compile matches
// only the name itself.
func nameMatch(pattern, name string) bool {
	if pattern == name || pattern == "/"+name {
		return true
	}
	re, err := regexp.Compile(pattern)
	return err == nil && (re.MatchString(name) || re.MatchString("/"+name))
}
