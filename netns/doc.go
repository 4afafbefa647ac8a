// Package netns owns container networking in lodged's detached network
// namespace: which rootlesskit network driver gives it its uplink (pasta,
// slirp4netns or the built-in gvisor-tap-vsock); the bridges, veths, NAT
// and isolation rules inside it (Fabric); per-container namespaces pinned
// before a container starts (Pin); host-local address choice (NextFree,
// PickSubnet); the name server of user-defined networks (Resolver); and
// published ports through rootlesskit's port driver (Ports). It does not
// create the user namespace (userns does) and it knows nothing of
// containers or networks as objects, nor keeps any state (daemon does).
package netns
