package main

import "testing"

// TestCheckStreamAddress: --cri-stream-address is refused at start when
// lodged could never listen there, not at a pod's first exec.
func TestCheckStreamAddress(t *testing.T) {
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:0", true},
		{"127.0.0.1:10010", true},
		{"[::1]:0", true},
		{"0.0.0.0:10010", true},
		{"127.0.0.1", false},       // no port
		{"localhost:10010", false}, // a name, resolved who knows where
		{"127.0.0.1:70000", false},
		{"127.0.0.1:http", false},
		{"", false},
	} {
		if err := checkStreamAddress(tc.addr); (err == nil) != tc.ok {
			t.Errorf("%q: %v, want ok=%v", tc.addr, err, tc.ok)
		}
	}
}
