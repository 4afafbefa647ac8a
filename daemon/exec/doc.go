// Package exec owns `docker exec`: the table of execs, each owned by its
// container, and the processes they run through the runtime. It sees the
// container service only through Containers, declared here, and takes no
// container's lock: the container side reads its records under its own.
//
// It does not own the containers, their cgroups or their events: it asks
// for those through Containers.
package exec
