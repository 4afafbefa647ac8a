package network

import (
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"

	"github.com/lodge-containers/lodge/errdefs"
)

// Connect and disconnect of a running container: one endpoint more or
// less in its sandbox. The container's record is the engine's to change.

// NetRef is a network as the engine names it: its ID and name.
type NetRef struct{ ID, Name string }

// Ref finds a network by name, ID or ID prefix.
func (n *Networks) Ref(ref string) (NetRef, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	r, err := n.lookup(ref)
	if err != nil {
		return NetRef{}, err
	}
	return NetRef{ID: r.ID, Name: r.Name}, nil
}

// OnNetwork tells whether the running container id has an endpoint on
// the network.
func (n *Networks) OnNetwork(id, networkID string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if sb := n.sandboxes[id]; sb != nil {
		for _, e := range sb.Endpoints {
			if e.NetworkID == networkID {
				return true
			}
		}
	}
	return false
}

// Join gives the running container id an endpoint on one more network.
// On error nothing of it is left.
func (n *Networks) Join(id string, ref NetRef, es *network.EndpointSettings) error {
	sb := n.sandboxFor(id)
	if sb == nil {
		return errdefs.Conflictf("container %s is not running", id)
	}
	if err := n.join(sb, ref.Name, es, false); err != nil {
		n.dropEndpoint(sb, ref.ID)
		return err
	}
	return nil
}

// Leave removes the running container id's endpoint on a network, if it
// has one.
func (n *Networks) Leave(id string, ref NetRef) {
	sb := n.sandboxFor(id)
	if sb == nil {
		return
	}
	n.dropEndpoint(sb, ref.ID)
	n.mu.Lock()
	r := n.nets[ref.ID]
	n.mu.Unlock()
	if r != nil {
		n.emit(events.ActionDisconnect, r, id)
	}
}

// dropEndpoint removes a sandbox's link on one network and frees its
// address.
func (n *Networks) dropEndpoint(sb *sandbox, networkID string) {
	n.mu.Lock()
	var keep []endpoint
	var gone []endpoint
	for _, e := range sb.Endpoints {
		if e.NetworkID == networkID {
			gone = append(gone, e)
		} else {
			keep = append(keep, e)
		}
	}
	sb.Endpoints = keep
	if err := n.saveSandbox(sb.ContainerID, sb); err != nil {
		// The link goes anyway; a restarted lodged would think the
		// address still taken until the container stops.
		n.Log.Warn("saving a sandbox record", "container", sb.ContainerID, "err", err)
	}
	n.mu.Unlock()
	if n.Fabric != nil {
		for _, e := range gone {
			if err := n.Fabric.Detach(e.HostIf); err != nil {
				n.Log.Warn("removing a container's link", "container", sb.ContainerID, "link", e.HostIf, "err", err)
			}
		}
	}
}
