// Package health runs containers' healthchecks: a probe loop per running
// container with one, each probe an exec, each result recorded in the
// container's health. It sees the container service and the exec table
// only through Containers and Execs, declared here; its loops end with
// the daemon's lifetime.
package health
