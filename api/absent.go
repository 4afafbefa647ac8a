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
}
