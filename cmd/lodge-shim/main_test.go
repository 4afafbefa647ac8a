package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestSmallLinks: lodge-shim lives as long as every container, so what it
// links is what each running container costs. It must not link the
// libraries that make lodge-monitor and lodged large.
func TestSmallLinks(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{"github.com/opencontainers/runc", "go.podman.io/", "net/http", "github.com/lodge-containers/lodge/runtime"} {
			if strings.HasPrefix(dep, banned) {
				t.Errorf("lodge-shim links %s", dep)
			}
		}
	}
}
