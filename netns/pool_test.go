package netns

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/lodge-containers/lodge/errdefs"
)

func TestPoolNext(t *testing.T) {
	pfx := netip.MustParsePrefix
	addr := netip.MustParseAddr
	tests := []struct {
		name string
		pool Pool
		want []string // every address handed out, in order, until exhausted
	}{
		{"ipv4 /29", Pool{Subnet: pfx("10.1.0.0/29"), Gateway: addr("10.1.0.1")},
			[]string{"10.1.0.2", "10.1.0.3", "10.1.0.4", "10.1.0.5", "10.1.0.6"}},
		{"range and aux", Pool{Subnet: pfx("10.1.0.0/24"), Range: pfx("10.1.0.128/30"), Gateway: addr("10.1.0.1"), Aux: []netip.Addr{addr("10.1.0.129")}},
			[]string{"10.1.0.128", "10.1.0.130", "10.1.0.131"}},
		{"range at the end keeps broadcast", Pool{Subnet: pfx("10.1.0.0/24"), Range: pfx("10.1.0.252/30"), Gateway: addr("10.1.0.1")},
			[]string{"10.1.0.252", "10.1.0.253", "10.1.0.254"}},
		{"point to point /31", Pool{Subnet: pfx("10.2.0.0/31"), Gateway: addr("10.2.0.0")},
			[]string{"10.2.0.1"}},
		{"ipv6 /126 skips the anycast address", Pool{Subnet: pfx("fd00:1::/126"), Gateway: addr("fd00:1::1")},
			[]string{"fd00:1::2", "fd00:1::3"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			used := map[netip.Addr]bool{}
			var got []string
			for {
				a, err := tc.pool.Next(used)
				if err != nil {
					if !errors.Is(err, errdefs.ErrUnavailable) {
						t.Fatalf("exhausted with %v", err)
					}
					break
				}
				used[a] = true
				got = append(got, a.String())
				if len(got) > 300 {
					t.Fatal("no end")
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func TestPoolDefaultGateway(t *testing.T) {
	for _, tc := range []struct{ subnet, ipRange, want string }{
		{"10.1.0.0/24", "", "10.1.0.1"},
		{"10.1.0.0/24", "10.1.0.64/26", "10.1.0.64"}, // Docker takes it from the range
		{"10.1.0.0/31", "", "10.1.0.0"},
		{"fd00:1::/64", "", "fd00:1::1"},
	} {
		p := Pool{Subnet: netip.MustParsePrefix(tc.subnet)}
		if tc.ipRange != "" {
			p.Range = netip.MustParsePrefix(tc.ipRange)
		}
		if gw, err := p.DefaultGateway(); err != nil || gw.String() != tc.want {
			t.Errorf("%s %s: gateway %s, %v; want %s", tc.subnet, tc.ipRange, gw, err, tc.want)
		}
	}
}

func TestPoolReserved(t *testing.T) {
	p := Pool{Subnet: netip.MustParsePrefix("10.1.0.0/24"), Gateway: netip.MustParseAddr("10.1.0.1"), Aux: []netip.Addr{netip.MustParseAddr("10.1.0.9")}}
	for a, want := range map[string]bool{"10.1.0.0": true, "10.1.0.1": true, "10.1.0.9": true, "10.1.0.255": true, "10.1.1.5": true, "10.1.0.200": false} {
		if got := p.Reserved(netip.MustParseAddr(a)); got != want {
			t.Errorf("Reserved(%s) = %v", a, got)
		}
	}
}

func TestULASubnet(t *testing.T) {
	a, b := ULASubnet("x", 0), ULASubnet("x", 1)
	if a == b || a != ULASubnet("x", 0) || a.Bits() != 64 || a.Addr().As16()[0] != 0xfd || a != a.Masked() {
		t.Errorf("ULA subnets %s %s", a, b)
	}
	if err := CheckSubnet6(a, []netip.Prefix{netip.MustParsePrefix(a.Addr().String() + "/48")}); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("overlap: %v", err)
	}
}

func TestCheckSubnetPointToPoint(t *testing.T) {
	s, _ := ParseSubnet("10.3.0.0/31")
	if err := CheckSubnet(s, nil); err != nil {
		t.Errorf("/31: %v", err)
	}
	s, _ = ParseSubnet("10.3.0.0/32")
	if err := CheckSubnet(s, nil); err == nil {
		t.Error("/32 accepted")
	}
}
