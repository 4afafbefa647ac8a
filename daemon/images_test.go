package daemon

import "testing"

func TestFamiliarName(t *testing.T) {
	for in, want := range map[string]string{
		"docker.io/library/mine:1": "mine:1",
		"busybox":                  "busybox:latest",
		"127.0.0.1:5000/team/app":  "127.0.0.1:5000/team/app:latest",
		"Not A Ref":                "Not A Ref",
	} {
		if got := familiarName(in); got != want {
			t.Errorf("familiarName(%q) = %q, want %q", in, got, want)
		}
	}
}
