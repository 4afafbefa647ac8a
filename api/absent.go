package api

import (
	"net/http"

	"github.com/lodge-containers/lodge/errdefs"
)

// addAbsentRoutes answers lookups of object kinds lodge does not keep yet.
// `docker inspect NAME` asks for each kind in turn and needs a "not found"
// from each, not a 501, to say "No such object". Only the lookups answer:
// everything else about these kinds stays 501.
func (s *Server) addAbsentRoutes(noNetworks bool) {
	if noNetworks {
		s.handle("GET /networks/{id}", func(w http.ResponseWriter, r *http.Request) error {
			return errdefs.NotFoundf("network %s not found", r.PathValue("id"))
		})
	}
	s.handle("GET /plugins/{name}/json", func(w http.ResponseWriter, r *http.Request) error {
		return errdefs.NotFoundf("plugin %q not found", r.PathValue("name"))
	})
	s.addSwarmRoutes()
}

// notManager is Docker's answer on a node in no swarm.
const notManager = "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again."

// addSwarmRoutes answers the swarm routes as Docker does on a node that
// is in no swarm: 503, which clients (docker-py's clean-up among them)
// take for "no swarm here". lodge cannot join or make one: init and join
// are 501.
func (s *Server) addSwarmRoutes() {
	unavailable := func(w http.ResponseWriter, r *http.Request) error { return errdefs.Unavailablef(notManager) }
	for _, p := range []string{"/swarm", "/swarm/update", "/swarm/unlockkey", "/swarm/unlock",
		"/nodes", "/services", "/services/create", "/tasks", "/secrets", "/secrets/create", "/configs", "/configs/create"} {
		s.handle(p, unavailable)
	}
	for _, p := range []string{"/nodes/", "/services/", "/tasks/", "/secrets/", "/configs/"} {
		s.handle(p, unavailable)
	}
	s.handle("/swarm/leave", func(w http.ResponseWriter, r *http.Request) error {
		return errdefs.Unavailablef("This node is not part of a swarm")
	})
	for _, p := range []string{"/swarm/init", "/swarm/join"} {
		s.handle(p, func(w http.ResponseWriter, r *http.Request) error {
			return errdefs.NotImplementedf("lodge does not implement %s %s: swarm mode is not part of one user's engine", r.Method, r.URL.Path)
		})
	}
}
