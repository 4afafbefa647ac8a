// Package volume is lodge's volume service: the named and anonymous
// volumes under <data-root>/volumes (the local driver only: a directory, a
// bind or a tmpfs), which containers reference each, and the reading of
// -v and --mount into MountPoints.
//
// It owns its state and its lock and knows nothing of containers but
// their IDs; the engine in package daemon references and releases volumes
// for them. Mounting into a container is the container side's work.
package volume
