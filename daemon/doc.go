// Package daemon is lodge's engine: the object model the API calls. It
// holds the container service (records, lifecycle, exec, logs, files) and
// composes the other services, each owning its state and lock: images
// (over package image), networks (package daemon/network: sandboxes and
// DNS, over values the container side copies; it takes no container's
// lock), volumes (package daemon/volume), events and system. Operations that span services
// (create, start, remove, connect, commit, df) live here; the services
// never call each other. It never imports api.
package daemon
