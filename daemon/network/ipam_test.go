package network

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/network"

	"github.com/lodge-containers/lodge/errdefs"
)

func TestValidateIPAM(t *testing.T) {
	pfx := netip.MustParsePrefix
	addr := netip.MustParseAddr
	tests := []struct {
		name string
		cfg  network.IPAMConfig
		v6   bool
		want string // "" for valid
	}{
		{"plain", network.IPAMConfig{Subnet: pfx("10.1.0.0/24")}, false, ""},
		{"range and aux", network.IPAMConfig{Subnet: pfx("10.1.0.0/24"), IPRange: pfx("10.1.0.128/25"), AuxAddress: map[string]netip.Addr{"a": addr("10.1.0.5")}}, false, ""},
		{"host bits", network.IPAMConfig{Subnet: pfx("10.1.0.1/24")}, false, "invalid subnet 10.1.0.1/24: it should be 10.1.0.0/24"},
		{"range outside", network.IPAMConfig{Subnet: pfx("10.1.0.0/24"), IPRange: pfx("10.2.0.0/25")}, false, "invalid ip-range 10.2.0.0/25: parent subnet 10.1.0.0/24 doesn't contain ip-range"},
		{"range bigger", network.IPAMConfig{Subnet: pfx("10.1.0.0/24"), IPRange: pfx("10.1.0.0/16")}, false, "invalid ip-range 10.1.0.0/16: CIDR block is bigger than its parent subnet 10.1.0.0/24"},
		{"range family", network.IPAMConfig{Subnet: pfx("10.1.0.0/24"), IPRange: pfx("fd00::/64")}, false, "invalid ip-range fd00::/64: parent subnet is an IPv4 block"},
		{"gateway outside", network.IPAMConfig{Subnet: pfx("10.1.0.0/24"), Gateway: addr("10.9.0.1")}, false, "invalid gateway 10.9.0.1: parent subnet 10.1.0.0/24 doesn't contain this address"},
		{"aux outside", network.IPAMConfig{Subnet: pfx("10.1.0.0/24"), AuxAddress: map[string]netip.Addr{"h": addr("10.9.0.1")}}, false, "invalid auxiliary address h: parent subnet 10.1.0.0/24 doesn't contain this address"},
		{"ipv6 ignored without --ipv6", network.IPAMConfig{Subnet: pfx("fd00::1/64")}, false, ""},
		{"ipv6 checked with --ipv6", network.IPAMConfig{Subnet: pfx("fd00::1/64")}, true, "invalid subnet fd00::1/64: it should be fd00::/64"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := validateIPAM([]network.IPAMConfig{tc.cfg}, tc.v6)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !errors.Is(err, errdefs.ErrInvalidArgument) || err.Error() != "invalid network config:\n"+tc.want {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
	err := validateIPAM([]network.IPAMConfig{{Subnet: pfx("10.1.0.1/24"), Gateway: addr("10.9.0.1")}}, false)
	if err == nil || !strings.Contains(err.Error(), "\n* invalid subnet") || !strings.Contains(err.Error(), "\n* invalid gateway") {
		t.Errorf("two faults: %v", err)
	}
}
