package netns

import (
	"errors"
	"net"
	"testing"

	"github.com/lodge-containers/lodge/errdefs"
)

func TestNextFree(t *testing.T) {
	sub, _ := ParseSubnet("10.1.0.0/29")
	gw := FirstHost(sub)
	if gw.String() != "10.1.0.1" {
		t.Fatalf("gateway %s", gw)
	}
	used := map[string]bool{}
	var got []string
	for {
		ip, err := NextFree(sub, gw, used)
		if err != nil {
			if !errors.Is(err, errdefs.ErrUnavailable) {
				t.Fatalf("exhausted: %v", err)
			}
			break
		}
		used[ip.String()] = true
		got = append(got, ip.String())
	}
	want := []string{"10.1.0.2", "10.1.0.3", "10.1.0.4", "10.1.0.5", "10.1.0.6"}
	if len(got) != len(want) {
		t.Fatalf("got %v want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v want %v", got, want)
		}
	}
	delete(used, "10.1.0.4")
	if ip, _ := NextFree(sub, gw, used); ip.String() != "10.1.0.4" {
		t.Errorf("released address not reused: %s", ip)
	}
}

func TestSubnets(t *testing.T) {
	a, _ := ParseSubnet("172.17.0.0/16")
	b, _ := ParseSubnet("172.18.0.0/16")
	got, err := PickSubnet([]net.IPNet{a, b})
	if err != nil || got.String() != "172.19.0.0/16" {
		t.Fatalf("PickSubnet: %v %v", got, err)
	}
	for _, tc := range []struct {
		in   string
		want error
	}{
		{"172.17.5.0/24", errdefs.ErrConflict},
		{"10.0.0.0/8", errdefs.ErrConflict}, // the uplink's 10.0.2.0/24
		{"10.77.0.0/24", nil},
		{"10.77.0.0/31", nil}, // point to point (RFC 3021)
		{"10.77.0.0/32", errdefs.ErrInvalidArgument},
	} {
		s, err := ParseSubnet(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		err = CheckSubnet(s, []net.IPNet{a, b})
		if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.in, err, tc.want)
		}
	}
	for _, bad := range []string{"", "x", "10.0.0.0/99", "fd00::/64", "1.2.3.4"} {
		if _, err := ParseSubnet(bad); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("ParseSubnet(%q): %v", bad, err)
		}
	}
}

// FuzzSubnets: no subnet string panics the IPAM functions.
func FuzzSubnets(f *testing.F) {
	for _, s := range []string{"10.0.0.0/8", "172.17.0.0/16", "0.0.0.0/0", "255.255.255.255/32", "::/0", "1.2.3.4/31"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sub, err := ParseSubnet(s)
		if err != nil {
			return
		}
		if CheckSubnet(sub, nil) != nil {
			return
		}
		ip, err := NextFree(sub, FirstHost(sub), map[string]bool{})
		if err == nil && !sub.Contains(ip) {
			t.Errorf("%s: %s is outside", s, ip)
		}
		PickSubnet([]net.IPNet{sub})
	})
}
