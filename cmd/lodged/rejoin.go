package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/lodge-containers/lodge/netns"
	"github.com/lodge-containers/lodge/userns"
)

// rejoinEnv is what a keeper that re-joins the namespaces of pid needs to
// know, as a keeper under rootlesskit learns it from its set-up.
func rejoinEnv(runDir string, pid int, o options) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/uid_map", pid))
	if err != nil {
		return nil, err
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	single := len(lines) == 1 && len(strings.Fields(lines[0])) == 3 && strings.Fields(lines[0])[2] == "1"
	source := "the namespace lodged made before (uid map " + strings.Join(strings.Fields(strings.Join(lines, " ")), " ") + ")"
	choice, err := netns.Choose(o.networkDriver, os.Stderr)
	if err != nil {
		return nil, err
	}
	return []string{
		envNetDriver + "=" + choice.Name,
		envNetSkipped + "=" + strings.Join(choice.Skipped, "\n"),
		envIDSource + "=" + source,
		envSingleID + "=" + strconv.FormatBool(single),
		userns.EnvStateDir + "=" + filepath.Join(runDir, "rootlesskit"),
	}, nil
}
