// Package netns owns container networking in lodged's detached network
// namespace: which rootlesskit network driver gives it its uplink (pasta,
// slirp4netns or the built-in gvisor-tap-vsock), and later bridges, IPAM,
// DNS and published ports. It does not create the user namespace (userns
// does) and it knows nothing of containers as objects (daemon does).
package netns
