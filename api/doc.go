// Package api serves the Docker Engine API on lodged's socket: routing
// (with /v1.NN/ prefixes), the owner-only listener, hijacked streams, and
// the one place where errors become HTTP statuses. Handlers decode requests
// into moby's API types and call small backends declared here; they hold no
// state of their own and never import the capability packages.
package api
