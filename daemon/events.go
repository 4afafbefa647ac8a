package daemon

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/events"
)

// Events keeps the daemon's recent events and hands new ones to
// subscribers, as GET /events serves them. It is safe for concurrent use;
// a nil *Events drops what is published.
type Events struct {
	mu     sync.Mutex
	recent []events.Message // the last eventsKept, oldest first
	subs   map[chan events.Message]struct{}
}

// eventsKept is how many past events a subscriber with --since can see:
// Docker Engine's 256. At 1024 the log held ~0.5 MiB of the daemon's heap
// at rest after a few hundred container runs (the heap profile's largest
// growth), for history Docker does not keep either.
const eventsKept = 256

// NewEvents makes an empty event log.
func NewEvents() *Events { return &Events{subs: map[chan events.Message]struct{}{}} }

// Publish records an event about an object and tells the subscribers. A
// subscriber too slow to take it misses it rather than stalling the daemon.
func (e *Events) Publish(typ events.Type, action events.Action, id string, attrs map[string]string) {
	if e == nil {
		return
	}
	now := time.Now()
	m := events.Message{Type: typ, Action: action, Actor: events.Actor{ID: id, Attributes: attrs},
		Scope: "local", Time: now.Unix(), TimeNano: now.UnixNano()}
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.recent) == eventsKept {
		e.recent = append(e.recent[:0], e.recent[1:]...)
	}
	e.recent = append(e.recent, m)
	for ch := range e.subs {
		select {
		case ch <- m:
		default:
		}
	}
}

// EventFilter selects events as GET /events' filters do. Within one key
// the values are alternatives; the keys must all hold. Empty matches
// everything. Since and Until bound the time (zero: unbounded).
type EventFilter struct {
	Types, Actions []string
	// Objects holds the name filters by key ("container", "volume",
	// "network", "daemon"): each value is an ID, a prefix of one, or a
	// name. As in Docker every key applies to every event whatever its
	// type, so container=x alone also leaves out network events.
	Objects map[string][]string
	// Images are references or IDs, matched against an image event's
	// object or a container event's image, with or without the tag.
	Images []string
	// Labels are "key" or "key=value"; an event must carry every one
	// among its attributes (compose selects its project's events so).
	Labels       []string
	Scopes       []string
	Since, Until time.Time
}

func (f EventFilter) match(m events.Message) bool {
	t := time.Unix(0, m.TimeNano)
	if !f.Since.IsZero() && t.Before(f.Since) || !f.Until.IsZero() && t.After(f.Until) {
		return false
	}
	if !anyOf(f.Types, string(m.Type)) || !anyOf(f.Scopes, m.Scope) || !f.matchAction(m.Action) {
		return false
	}
	for _, vs := range f.Objects {
		if !anyOf(vs, m.Actor.ID) && !anyOf(vs, m.Actor.Attributes["name"]) {
			return false
		}
	}
	return f.matchImage(m) && matchLabels(f.Labels, m.Actor.Attributes)
}

// matchAction lets "health_status", "exec_create" and "exec_start" also
// select the actions that carry a detail after a colon
// ("health_status: healthy"), as Docker's filter does.
func (f EventFilter) matchAction(a events.Action) bool {
	if len(f.Actions) == 0 {
		return true
	}
	for _, v := range f.Actions {
		if v == string(a) || strings.HasPrefix(string(a), v+":") {
			return true
		}
	}
	return false
}

func (f EventFilter) matchImage(m events.Message) bool {
	if len(f.Images) == 0 {
		return true
	}
	name := m.Actor.Attributes["image"]
	if m.Type == events.ImageEventType {
		name = m.Actor.Attributes["name"]
	}
	for _, v := range f.Images {
		for _, have := range []string{m.Actor.ID, name} {
			if have != "" && (v == have || v == withoutTag(have)) {
				return true
			}
		}
	}
	return false
}

// withoutTag drops ":tag" from a reference, never a registry's port nor
// the algorithm of an ID or digest.
func withoutTag(ref string) string {
	if strings.HasPrefix(ref, "sha256:") || strings.Contains(ref, "@") {
		return ref
	}
	if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
		return ref[:i]
	}
	return ref
}

func matchLabels(want []string, attrs map[string]string) bool {
	for _, l := range want {
		k, v, hasValue := strings.Cut(l, "=")
		have, ok := attrs[k]
		if !ok || hasValue && have != v {
			return false
		}
	}
	return true
}

func anyOf(set []string, v string) bool {
	if len(set) == 0 {
		return true
	}
	for _, s := range set {
		if s == v || len(s) >= 12 && len(v) > len(s) && v[:len(s)] == s {
			return true
		}
	}
	return false
}

// Watch sends the recorded events f selects, then new ones as they come,
// until ctx ends or f.Until passes.
func (e *Events) Watch(ctx context.Context, f EventFilter, send func(events.Message) error) error {
	ch := make(chan events.Message, 64)
	e.mu.Lock()
	past := append([]events.Message(nil), e.recent...)
	e.subs[ch] = struct{}{}
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		delete(e.subs, ch)
		e.mu.Unlock()
	}()
	for _, m := range past {
		if f.match(m) {
			if err := send(m); err != nil {
				return err
			}
		}
	}
	var until <-chan time.Time
	if !f.Until.IsZero() {
		t := time.NewTimer(time.Until(f.Until))
		defer t.Stop()
		until = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-until:
			return nil
		case m := <-ch:
			if f.match(m) {
				if err := send(m); err != nil {
					return err
				}
			}
		}
	}
}

// forContainer publishes an event about container c. Callers hold c.mu.
func (e *Events) forContainer(c *Container, action events.Action, extra ...string) {
	// The container's labels ride along, as in Docker: compose follows
	// its project by a label filter.
	attrs := map[string]string{}
	if c.Config != nil {
		for k, v := range c.Config.Labels {
			attrs[k] = v
		}
	}
	attrs["name"], attrs["image"] = c.Name, c.Image
	for i := 0; i+1 < len(extra); i += 2 {
		attrs[extra[i]] = extra[i+1]
	}
	e.Publish(events.ContainerEventType, action, c.ID, attrs)
}
