package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestSmallLinks: lodge-shim lives as long as every container, so what it
// links is what each running container costs (issue 20: cgroupv2 brought
// godbus, go-systemd and crypto, 0.6 MiB of RSS a container). It must not
// link the libraries that make lodge-monitor and lodged large.
func TestSmallLinks(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	banned := []string{
		"github.com/opencontainers/runc", "go.podman.io/", "net/http", "crypto/",
		"github.com/godbus/", "github.com/coreos/go-systemd",
		"github.com/lodge-containers/lodge/runtime", "github.com/lodge-containers/lodge/cgroupv2",
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, b := range banned {
			if strings.HasPrefix(dep, b) {
				t.Errorf("lodge-shim links %s", dep)
			}
		}
	}
}
