// Package logs reads containers' logs as their drivers keep them
// (json-file, local), for `docker logs` and attach's replay. It sees the
// container service only through Containers, declared here, and owns no
// container state: the monitor writes the logs, this package reads them.
package logs
