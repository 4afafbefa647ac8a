package daemon

import (
	"encoding/json"
	"sort"
	"sync"
)

// view is the containers as `docker ps` sees them: a copy of each record
// taken whenever it changes (moby's container view has the same idea), so
// that List reads without taking any container's lock and never waits
// behind a Start, a Stop or a probe that holds one.
//
// The copies are immutable once in the view: a change replaces the copy.
// Its lock guards only the map and is never held while calling out; a
// container's lock may be held while taking it, never the other way.
type view struct {
	mu   sync.RWMutex
	recs map[string]*Container // by ID
}

// put records c's current state; callers hold c.mu. b is c as JSON when
// the caller has it already (save does), else nil.
func (v *view) put(c *Container, b []byte) {
	if b == nil {
		var err error
		if b, err = json.Marshal(c); err != nil {
			return
		}
	}
	cp := &Container{}
	if err := json.Unmarshal(b, cp); err != nil {
		return
	}
	v.mu.Lock()
	if v.recs == nil {
		v.recs = map[string]*Container{}
	}
	v.recs[cp.ID] = cp
	v.mu.Unlock()
}

// drop forgets a removed container.
func (v *view) drop(id string) {
	v.mu.Lock()
	delete(v.recs, id)
	v.mu.Unlock()
}

// all returns the copies, newest first. They must not be changed.
func (v *view) all() []*Container {
	v.mu.RLock()
	out := make([]*Container, 0, len(v.recs))
	for _, c := range v.recs {
		out = append(out, c)
	}
	v.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out
}
