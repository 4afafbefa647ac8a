// Package files moves files in and out of containers (docker cp's stat,
// get and put, and docker export), never outside their roots: it opens
// them with rootdir. It sees the container service only through
// Containers, declared here, and holds no state; the changes of a
// container's layer (docker diff) stay with the engine, beside commit.
package files
