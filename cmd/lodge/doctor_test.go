package main

import "testing"

func TestKernelAtLeast(t *testing.T) {
	for _, tc := range []struct {
		rel  string
		want bool
	}{
		{"6.1.0-27-amd64", true},
		{"5.11.0", true},
		{"5.10.209-1", false},
		{"4.18.0-513.el8.x86_64", false},
		{"5.15", true},
		{"garbage", false},
	} {
		if got := kernelAtLeast(tc.rel, 5, 11); got != tc.want {
			t.Errorf("kernelAtLeast(%q, 5, 11) = %v, want %v", tc.rel, got, tc.want)
		}
	}
}
