package daemon

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"

	"github.com/lodge-containers/lodge/errdefs"
)

// parseLink reads a HostConfig.Links entry as the docker CLI sends it
// ("name:alias", "name") or as Docker's inspect shows it
// ("/name:/parent/alias"): the linked container and the alias.
func parseLink(l string) (name, alias string) {
	name, alias, _ = strings.Cut(l, ":")
	name = strings.TrimPrefix(name, "/")
	alias = alias[strings.LastIndex(alias, "/")+1:]
	if alias == "" {
		alias = name
	}
	return name, alias
}

// linkEnv is the environment Docker's legacy links give a container for
// one link: linkName is "/parent/alias", ip the linked container's address,
// ports its exposed ports ("80/tcp"), env its environment.
func linkEnv(linkName, ip string, ports, env []string) []string {
	alias := linkName[strings.LastIndex(linkName, "/")+1:]
	alias = strings.ReplaceAll(strings.ToUpper(alias), "-", "_")
	type port struct {
		n     int
		proto string
	}
	var ps []port
	for _, p := range ports {
		num, proto, _ := strings.Cut(p, "/")
		if proto == "" {
			proto = "tcp"
		}
		if n, err := strconv.Atoi(num); err == nil {
			ps = append(ps, port{n, strings.ToLower(proto)})
		}
	}
	// tcp first, then by number, as Docker sorts them.
	sort.Slice(ps, func(i, j int) bool {
		if (ps[i].proto == "tcp") != (ps[j].proto == "tcp") {
			return ps[i].proto == "tcp"
		}
		if ps[i].n != ps[j].n {
			return ps[i].n < ps[j].n
		}
		return ps[i].proto < ps[j].proto
	})
	var out []string
	var start, end port
	for i, p := range ps {
		if i == 0 {
			start, end = p, p
			out = append(out, fmt.Sprintf("%s_PORT=%s://%s:%d", alias, p.proto, ip, p.n))
		}
		prefix := fmt.Sprintf("%s_PORT_%d_%s", alias, p.n, strings.ToUpper(p.proto))
		out = append(out,
			fmt.Sprintf("%s=%s://%s:%d", prefix, p.proto, ip, p.n),
			fmt.Sprintf("%s_ADDR=%s", prefix, ip),
			fmt.Sprintf("%s_PORT=%d", prefix, p.n),
			fmt.Sprintf("%s_PROTO=%s", prefix, p.proto))
		// Consecutive ports of one protocol are a range too.
		if p.n == end.n+1 && p.proto == start.proto {
			end = p
			if i < len(ps)-1 {
				continue
			}
		}
		if end != start {
			prefix = fmt.Sprintf("%s_PORT_%d_%s", alias, start.n, strings.ToUpper(start.proto))
			out = append(out,
				fmt.Sprintf("%s_START=%s://%s:%d", prefix, start.proto, ip, start.n),
				fmt.Sprintf("%s_PORT_START=%d", prefix, start.n),
				fmt.Sprintf("%s_END=%s://%s:%d", prefix, end.proto, ip, end.n),
				fmt.Sprintf("%s_PORT_END=%d", prefix, end.n))
		}
		start, end = p, p
	}
	out = append(out, fmt.Sprintf("%s_NAME=%s", alias, linkName))
	for _, kv := range env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "HOME" || k == "PATH" {
			continue
		}
		out = append(out, fmt.Sprintf("%s_ENV_%s=%s", alias, k, v))
	}
	return out
}

// linkEnvs is the environment c's links give it, for the containers
// linked that are running. Callers hold c.mu.
func (g *netGlue) linkEnvs(c *Container) []string {
	var out []string
	for _, l := range c.HostConfig.Links {
		name, alias := parseLink(l)
		other, err := g.recs.get(name)
		if err != nil || other == c {
			continue
		}
		ip := ""
		if g.nw != nil {
			ip = g.nw.PrimaryIP(other.ID)
		}
		other.mu.Lock()
		var ports []string
		for p := range other.Config.ExposedPorts {
			ports = append(ports, p.String())
		}
		env := append([]string(nil), other.Config.Env...)
		other.mu.Unlock()
		out = append(out, linkEnv("/"+c.Name+"/"+alias, ip, ports, env)...)
	}
	return out
}

// linkNames are the names links give containers, by ID: Docker lists a
// linked container under "/parent/alias" too. It reads snaps, the view's
// copies (all of them, so that a link's target is found by name).
func (g *netGlue) linkNames(snaps []*Container) map[string][]string {
	byName := map[string]string{}
	for _, c := range snaps {
		byName[c.Name] = c.ID
	}
	out := map[string][]string{}
	for _, c := range snaps {
		for _, l := range c.HostConfig.Links {
			name, alias := parseLink(l)
			id, ok := byName[name]
			if !ok {
				if other, err := g.recs.get(name); err == nil {
					id, ok = other.ID, true
				}
			}
			if ok {
				out[id] = append(out[id], "/"+c.Name+"/"+alias)
			}
		}
	}
	return out
}

// RemoveLink is DELETE /containers/{parent}/{alias}?link=1 (docker rm
// --link): the link goes from the parent's record, both containers stay.
// name is "/parent/alias". The parent's /etc/hosts keeps the name until it
// restarts, as with Docker.
func (g *netGlue) RemoveLink(name string) error {
	parent, alias, ok := strings.Cut(strings.Trim(name, "/"), "/")
	if !ok || parent == "" {
		return errdefs.InvalidArgumentf("Conflict, cannot remove the default link name of the container")
	}
	p, err := g.recs.get(parent)
	if err != nil {
		return errdefs.NotFoundf("Cannot get parent %s for link name %s", parent, name)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var kept []string
	found := false
	for _, l := range p.HostConfig.Links {
		if _, a := parseLink(l); a == alias {
			found = true
			continue
		}
		kept = append(kept, l)
	}
	if !found {
		return errdefs.NotFoundf("No such container: %s", name)
	}
	p.HostConfig.Links = kept
	return g.recs.save(p)
}

// checkLinks refuses a link to a container that does not exist: a 400,
// not a 404, which the docker CLI would take for a missing image and
// pull.
func (g *netGlue) checkLinks(hc *container.HostConfig) error {
	for _, l := range hc.Links {
		name, _, _ := strings.Cut(l, ":")
		name = strings.TrimPrefix(name, "/")
		if name == "" {
			return errdefs.InvalidArgumentf("invalid link format: %q", l)
		}
		if _, err := g.recs.get(name); err != nil {
			if errors.Is(err, errdefs.ErrNotFound) {
				return errdefs.InvalidArgumentf("could not get container for %s: %v", name, err)
			}
			return err
		}
	}
	return nil
}
