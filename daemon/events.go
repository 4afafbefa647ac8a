package daemon

import (
	"context"
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

// eventsKept is how many past events a subscriber with --since can see.
const eventsKept = 1024

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

// EventFilter selects events: by type, action and object (ID or name),
// each an OR of its values; empty matches everything. Since and Until
// bound the time (zero: unbounded).
type EventFilter struct {
	Types, Actions, Objects []string
	Since, Until            time.Time
}

func (f EventFilter) match(m events.Message) bool {
	t := time.Unix(0, m.TimeNano)
	if !f.Since.IsZero() && t.Before(f.Since) || !f.Until.IsZero() && t.After(f.Until) {
		return false
	}
	return anyOf(f.Types, string(m.Type)) && anyOf(f.Actions, string(m.Action)) &&
		(anyOf(f.Objects, m.Actor.ID) || m.Actor.Attributes != nil && anyOf(f.Objects, m.Actor.Attributes["name"]))
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

// emit publishes an event about container c. Callers hold c.mu.
func (s *Containers) emit(c *Container, action events.Action, extra ...string) {
	attrs := map[string]string{"name": c.Name, "image": c.Image}
	for i := 0; i+1 < len(extra); i += 2 {
		attrs[extra[i]] = extra[i+1]
	}
	s.Events.Publish(events.ContainerEventType, action, c.ID, attrs)
}
