package buildkitd

import (
	"context"
	"net"
	"net/http"

	"github.com/containerd/containerd/v2/core/remotes/docker"
)

// localFirst puts lodged's read-only registry view of its image store
// (GET /lodge/registry/HOST/...) before the hosts next names for every
// registry, for pulls and resolves only. A name lodge holds is then built
// from lodge's copy, as Docker's BuildKit builds from Docker's store; a
// name it does not hold answers 404 and the resolver goes on to the real
// registry. --pull cannot skip the local copy: the hosts are chosen per
// registry, not per request.
func localFirst(lodgeSocket string, next docker.RegistryHosts) docker.RegistryHosts {
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", lodgeSocket)
	}}}
	return func(host string) ([]docker.RegistryHost, error) {
		hosts, err := next(host)
		if err != nil {
			return nil, err
		}
		local := docker.RegistryHost{
			Client: client, Host: "lodge", Scheme: "http", Path: "/lodge/registry/" + host,
			Capabilities: docker.HostCapabilityPull | docker.HostCapabilityResolve,
		}
		return append([]docker.RegistryHost{local}, hosts...), nil
	}
}
