// Package userns puts lodged into its rootless user namespace.
//
// It owns: reading the user's subordinate id ranges (/etc/subuid,
// /etc/subgid, getsubids), building the id maps, choosing between the
// subid map (through newuidmap/newgidmap, driven by rootlesskit's
// pkg/parent) and the single-id fallback (only the user's own id, mapped to
// 0, written directly), and the re-execution of lodged into the namespace
// with a detached network namespace for containers.
//
// It does not own the network drivers (netns picks them) nor anything that
// runs inside the namespace once it is set up (daemon).
package userns
