package network

import (
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"

	"github.com/lodge-containers/lodge/errdefs"
)

// Connect and disconnect of a running container: one endpoint more or
// less in its sandbox. The container's record is the engine's to change.

// OnNetwork tells whether the running container id has an endpoint on
// the network.
func (s *Sandboxes) OnNetwork(id, networkID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sb := s.sandboxes[id]; sb != nil {
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
func (s *Sandboxes) Join(id string, ref NetRef, es *network.EndpointSettings) error {
	sb := s.sandboxFor(id)
	if sb == nil {
		return errdefs.Conflictf("container %s is not running", id)
	}
	if err := s.join(sb, ref.Name, es, false, nil); err != nil {
		s.dropEndpoint(sb, ref.ID)
		return err
	}
	return nil
}

// Leave removes the running container id's endpoint on a network, if it
// has one.
func (s *Sandboxes) Leave(id string, ref NetRef) {
	sb := s.sandboxFor(id)
	if sb == nil {
		return
	}
	s.dropEndpoint(sb, ref.ID)
	if r, ok := s.defs.byID(ref.ID); ok {
		emit(s.cfg.Events, events.ActionDisconnect, r.ID, r.Name, id)
	}
}

// dropEndpoint removes a sandbox's link on one network and frees its
// address.
func (s *Sandboxes) dropEndpoint(sb *sandbox, networkID string) {
	s.mu.Lock()
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
	if err := s.records.save(sb); err != nil {
		// The link goes anyway; a restarted lodged would think the
		// address still taken until the container stops.
		s.cfg.Log.Warn("saving a sandbox record", "container", sb.ContainerID, "err", err)
	}
	s.mu.Unlock()
	for _, e := range gone {
		s.defs.release(e.NetworkID, sb.ContainerID)
	}
	if s.cfg.Fabric != nil {
		for _, e := range gone {
			if err := s.cfg.Fabric.Detach(e.HostIf); err != nil {
				s.cfg.Log.Warn("removing a container's link", "container", sb.ContainerID, "link", e.HostIf, "err", err)
			}
		}
	}
}
