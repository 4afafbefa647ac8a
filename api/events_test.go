package api

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/moby/moby/api/types/events"

	"github.com/lodge-containers/lodge/errdefs"
)

func TestEventFilterKeys(t *testing.T) {
	for _, k := range []string{"type", "event", "container", "image", "label", "volume", "network", "daemon", "scope", "service"} {
		if _, err := eventFilter(map[string][]string{k: {"x"}}); err != nil {
			t.Errorf("%s: %v", k, err)
		}
	}
	_, err := eventFilter(map[string][]string{"colour": {"x"}})
	if !errors.Is(err, errdefs.ErrInvalidArgument) || err.Error() != "invalid filter 'colour'" {
		t.Errorf("unknown key: %v", err)
	}
	f, _ := eventFilter(map[string][]string{"label": {"a=b"}, "network": {"n"}})
	if len(f.Labels) != 1 || len(f.Objects["network"]) != 1 {
		t.Errorf("filter %+v", f)
	}
}

// TestWireEvent: container and image events carry the old top-level
// fields beside the new ones; others do not.
func TestWireEvent(t *testing.T) {
	for _, tc := range []struct {
		m    events.Message
		want string
	}{
		{events.Message{Type: events.ContainerEventType, Action: events.ActionStart, Actor: events.Actor{ID: "c1", Attributes: map[string]string{"image": "busybox"}}, Time: 1},
			`{"status":"start","id":"c1","from":"busybox","Type":"container","Action":"start","Actor":{"ID":"c1","Attributes":{"image":"busybox"}},"time":1}`},
		{events.Message{Type: events.ImageEventType, Action: events.ActionTag, Actor: events.Actor{ID: "sha256:1"}},
			`{"status":"tag","id":"sha256:1","Type":"image","Action":"tag","Actor":{"ID":"sha256:1","Attributes":null}}`},
		{events.Message{Type: events.NetworkEventType, Action: events.ActionCreate, Actor: events.Actor{ID: "n1"}},
			`{"Type":"network","Action":"create","Actor":{"ID":"n1","Attributes":null}}`},
	} {
		b, err := json.Marshal(wireEvent(tc.m))
		if err != nil || string(b) != tc.want {
			t.Errorf("got %s %v\nwant %s", b, err, tc.want)
		}
	}
}
