// Package runtime runs containers. It owns the OCI runtime-spec config of a
// container (spec*.go), and its execution through runc's libcontainer,
// embedded in lodged: one small monitor process per container (lodged
// re-executed) creates the container, owns its stdio, writes its json-file
// log, records its exit status and serves attach and control sockets, so
// that a container outlives the API daemon. A monitor that dies is
// replaced by one that adopts the running container (monitor_adopt.go);
// InitProc (shim) reaches a container's init without any. Exec processes are
// started through lodge-exec (C) from an exec plan made at the container's
// first exec (execplan.go), else through lodge-monitor (exec_helper.go).
//
// It does not own container objects, names or state on disk beyond the
// monitor's own files (daemon does), nor images or rootfs mounts (storage).
package runtime
