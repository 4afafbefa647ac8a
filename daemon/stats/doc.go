// Package stats samples running containers for docker stats (their
// cgroup's counters and their network namespace's interfaces) and lists
// their processes for docker top. It reads; it changes nothing, and sees
// the container service only through Containers, declared here.
package stats
