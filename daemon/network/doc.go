// Package network is lodge's network service: the bridge networks under
// <data-root>/networks, their address allocations, and each running
// container's sandbox (its pinned namespace, its endpoints, its published
// ports, the names DNS answers for it), persisted so that a restarted
// lodged re-adopts them.
//
// It is two halves, each owning its state and its lock, never holding
// both: Store, the network definitions (records, IPAM leases, bridges and
// rules), and Sandboxes, the running containers' network state, which
// sees the store through a small interface. Networks embeds both and adds
// what spans them.
//
// It knows containers only by the values the engine hands it (Spec: IDs,
// names, hostname, links, endpoint configs, ports), never their records,
// and takes no container's lock.
// The links and bridges (Fabric), the port driver (PortPublisher) and the
// name servers (NameServer) are what it drives; netns implements them.
//
// Importers that also use moby's network types name it netsvc.
package network
