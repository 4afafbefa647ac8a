package network

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/moby/moby/api/types/network"

	"github.com/lodge-containers/lodge/netns"
)

// Spare namespaces: a few network namespaces pinned ahead of the starts
// that take them, each with its link to the default bridge made (the veth
// pair, its host end up on the bridge, eth0 down without an address, the
// loopback up). What a spare saves a start is the kernel's work of a new
// namespace and a veth pair, about half of what the default network cost
// a `docker run`; the start only gives eth0 its address and route.
//
// A spare lives at RunDir/netns/spare-N (N below Config.Spares, so that the
// same paths are there whenever lodged is at rest). A start that takes one
// binds its namespace to the container's own path, as a namespace pinned
// for it would be, and records that path, so nothing else (teardown,
// re-adoption, the records) knows spares exist; the filler then unpins
// the slot and makes a new spare there, off the start's path.
//
// Crash safety: a spare is only a pinned namespace and a link on the
// bridge that dies with it. Whatever lodged leaves under RunDir/netns
// that no sandbox record names (spares, a slot taken but not yet made
// again, a container's pin made before its record) is unpinned when the
// next lodged loads the sandboxes (sweep), and a pin left on a
// container's path is replaced by its next start (netns.Pin).

// spare is one prepared namespace.
type spare struct {
	path   string // RunDir/netns/spare-N
	hostIf string // its veth's end on the bridge
	bridge string // the bridge it is linked to
}

// Binder puts the namespace pinned at one path on another (netns.Bind
// does), for a start that takes a spare.
type Binder interface {
	Bind(from, to string) error
}

func (netnsPins) Bind(from, to string) error { return netns.Bind(from, to) }

// spareSlot is the path of spare slot n.
func (s *Sandboxes) spareSlot(n int) string {
	return filepath.Join(s.cfg.RunDir, "netns", "spare-"+strconv.Itoa(n))
}

// sweep unpins whatever is pinned under RunDir/netns that no sandbox
// record names: what a lodged killed mid-attach, or between a spare taken
// and its slot made again, left. It runs before any attach.
func (s *Sandboxes) sweep() {
	dir := filepath.Join(s.cfg.RunDir, "netns")
	ents, err := os.ReadDir(dir)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			s.cfg.Log.Warn("reading the pinned network namespaces", "err", err)
		}
		return
	}
	named := map[string]bool{}
	for _, sb := range s.sandboxes {
		named[sb.NSPath] = true
	}
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		if named[p] {
			continue
		}
		if err := s.cfg.Namespaces.Unpin(p); err != nil {
			s.cfg.Log.Warn("unpinning a network namespace no container holds", "path", p, "err", err)
		}
	}
}

// takeSpare gives the namespace of a spare linked to bridge to the
// container id: it is bound on to (the container's own path). ok is false
// when there is none, and the caller pins a namespace of its own.
func (s *Sandboxes) takeSpare(bridge, to string) (sp spare, ok bool) {
	s.mu.Lock()
	for i, c := range s.spares {
		if c.bridge == bridge {
			sp, ok = c, true
			s.spares = append(s.spares[:i], s.spares[i+1:]...)
			break
		}
	}
	var err error
	if ok {
		// Bound under the lock: once the lock is let go, the filler
		// unpins the slot, which must not keep the container's
		// namespace (and its address on the bridge) past its stop.
		err = s.cfg.Binder.Bind(sp.path, to)
		s.taken = append(s.taken, sp.path)
	}
	s.mu.Unlock()
	if !ok {
		return spare{}, false
	}
	// The slot is the filler's to unpin and make again.
	s.fill()
	if err != nil {
		s.cfg.Log.Warn("taking a spare network namespace", "path", sp.path, "err", err)
		return spare{}, false
	}
	return sp, true
}

// fill makes spares until there are Config.Spares of them, in the
// background; one filler runs at a time. A spare that cannot be made
// stops it until the next start that takes one.
func (s *Sandboxes) fill() {
	if s.cfg.Spares <= 0 || s.cfg.Fabric == nil || s.cfg.Binder == nil {
		return
	}
	s.mu.Lock()
	if s.filling || s.closed {
		s.mu.Unlock()
		return
	}
	s.filling = true
	s.mu.Unlock()
	s.fillers.Add(1)
	go func() {
		defer s.fillers.Done()
		for {
			s.releaseTaken()
			s.mu.Lock()
			if len(s.taken) > 0 && !s.closed {
				// A start took a spare since: its slot is released
				// first. Chosen now, that slot would be made again
				// and then unpinned under the new spare by the
				// release still owed to the take, leaving a spare
				// whose path holds no namespace (a start bound it
				// and failed with "invalid argument").
				s.mu.Unlock()
				continue
			}
			slot := -1
			if !s.closed {
				have := map[string]bool{}
				for _, c := range s.spares {
					have[c.path] = true
				}
				for n := 0; n < s.cfg.Spares; n++ {
					if !have[s.spareSlot(n)] {
						slot = n
						break
					}
				}
			}
			if slot < 0 {
				s.filling = false
				s.mu.Unlock()
				return
			}
			s.mu.Unlock()
			sp, err := s.makeSpare(s.spareSlot(slot))
			s.mu.Lock()
			if err != nil {
				s.filling = false
				s.mu.Unlock()
				s.cfg.Log.Warn("making a spare network namespace", "err", err)
				return
			}
			s.spares = append(s.spares, sp)
			s.mu.Unlock()
		}
	}()
}

// releaseTaken unpins the slots of the spares starts took: their
// namespaces then live on the containers' own paths only.
func (s *Sandboxes) releaseTaken() {
	s.mu.Lock()
	taken := s.taken
	s.taken = nil
	s.mu.Unlock()
	for _, p := range taken {
		if err := s.cfg.Namespaces.Unpin(p); err != nil {
			s.cfg.Log.Warn("unpinning a spare network namespace a start took", "path", p, "err", err)
		}
	}
}

// makeSpare pins a new namespace on path (replacing what a taken spare
// left there) and links it to the default bridge.
func (s *Sandboxes) makeSpare(path string) (spare, error) {
	r, err := s.defs.find(network.NetworkBridge)
	if err != nil {
		return spare{}, err
	}
	if err := s.cfg.Namespaces.Pin(path); err != nil {
		return spare{}, err
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b) // crypto/rand does not fail on Linux
	sp := spare{path: path, hostIf: "lsp" + hex.EncodeToString(b)[:11], bridge: r.Bridge}
	if err := s.cfg.Fabric.Prepare(netns.Endpoint{Bridge: sp.bridge, HostIf: sp.hostIf, NSPath: path, IfName: "eth0"}); err != nil {
		_ = s.cfg.Namespaces.Unpin(path) // the link's error is the one to report; its pair went with it
		return spare{}, err
	}
	return sp, nil
}

// closeSpares stops the filler and unpins the spares: a stopped lodged
// leaves none (the next one's sweep would unpin them anyway).
func (s *Sandboxes) closeSpares() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.fillers.Wait()
	s.releaseTaken()
	s.mu.Lock()
	sps := s.spares
	s.spares = nil
	s.mu.Unlock()
	for _, sp := range sps {
		_ = s.cfg.Namespaces.Unpin(sp.path) // at shutdown; the next lodged's sweep retries
	}
}
