package main

import (
	"testing"
	"time"
)

func TestIdleStopAfter(t *testing.T) {
	for _, tc := range []struct {
		flag    time.Duration
		file    string
		want    time.Duration
		wantErr bool
	}{
		{0, "", 0, false},
		{0, "30m", 30 * time.Minute, false},
		{time.Minute, "30m", time.Minute, false}, // the flag wins
		{0, "soon", 0, true},
		{0, "-5s", 0, true},
		{-time.Second, "", 0, false},
	} {
		got, err := idleStopAfter(options{idleStop: tc.flag}, fileConfig{IdleStop: tc.file})
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("idleStopAfter(%v, %q) = %v, %v; want %v (error: %v)", tc.flag, tc.file, got, err, tc.want, tc.wantErr)
		}
	}
}
