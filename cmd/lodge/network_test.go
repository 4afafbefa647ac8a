package main

import (
	"testing"

	"github.com/moby/moby/api/types/network"
)

func TestParsePublish(t *testing.T) {
	for _, tc := range []struct {
		spec string
		want map[string]string // "port/proto" -> "ip:hostPort"
		bad  bool
	}{
		{spec: "80", want: map[string]string{"80/tcp": "invalid IP:"}},
		{spec: "8080:80", want: map[string]string{"80/tcp": "invalid IP:8080"}},
		{spec: "127.0.0.1:8080:80/udp", want: map[string]string{"80/udp": "127.0.0.1:8080"}},
		{spec: "8000-8001:80-81", want: map[string]string{"80/tcp": "invalid IP:8000", "81/tcp": "invalid IP:8001"}},
		{spec: "8000-8010:80", want: map[string]string{"80/tcp": "invalid IP:8000-8010"}},
		{spec: "8000-8002:80-81", bad: true},
		{spec: "x:80", bad: true},
		{spec: "1.2.3:80:80", bad: true},
		{spec: "a:b:c:d", bad: true},
		{spec: "80/sctpx", bad: true},
		{spec: "99999", bad: true},
	} {
		exposed, bindings := network.PortSet{}, network.PortMap{}
		err := parsePublish(tc.spec, exposed, bindings)
		if tc.bad {
			if err == nil {
				t.Errorf("%q accepted: %v", tc.spec, bindings)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.spec, err)
			continue
		}
		if len(bindings) != len(tc.want) {
			t.Errorf("%q: %v", tc.spec, bindings)
		}
		for p, bs := range bindings {
			if _, ok := exposed[p]; !ok {
				t.Errorf("%q: %s not exposed", tc.spec, p)
			}
			if got := bs[0].HostIP.String() + ":" + bs[0].HostPort; len(bs) != 1 || got != tc.want[p.String()] {
				t.Errorf("%q: %s -> %q, want %q", tc.spec, p, got, tc.want[p.String()])
			}
		}
	}
}

// FuzzParsePublish: no -p spec panics, and an accepted one binds only
// valid ports.
func FuzzParsePublish(f *testing.F) {
	for _, s := range []string{"80", "127.0.0.1:8080:80/udp", "8000-8001:80-81", "::1:80:80", "a:b:c:d", "65536", "1-0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		bindings := network.PortMap{}
		if err := parsePublish(spec, network.PortSet{}, bindings); err != nil {
			return
		}
		for p := range bindings {
			if !p.IsValid() || p.Num() == 0 {
				t.Errorf("%q: invalid port %v", spec, p)
			}
		}
	})
}
