// Package buildbin builds lodge's binaries into a directory, for the
// end-to-end tests and the benchmark, the way the Makefile does.
package buildbin

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
)

// Binaries are the programs lodge installs: the two commands and the
// helpers lodged runs from libexec.
var Binaries = []string{"lodged", "lodge-monitor", "lodge-shim", "lodge-exec", "lodge-wait", "lodge-usernet", "lodge-buildkitd", "lodge", "lodge-init", "lodge-keeper"}

// ShimSources are lodge-shim's C sources, relative to the repository.
var ShimSources = []string{"shim/c/shim.c", "shim/c/json.c", "shim/c/proc.c"}

// ExecSources are lodge-exec's C sources, relative to the repository.
var ExecSources = []string{"shim/c/exec.c", "shim/c/json.c", "shim/c/proc.c"}

// Build builds the named binaries (all of Binaries when none are named)
// from the repository at root into dir, the compilers' output going to
// log.
func Build(root, dir string, log io.Writer, names ...string) error {
	if len(names) == 0 {
		names = Binaries
	}
	for _, b := range names {
		if err := build(root, dir, b, log); err != nil {
			return fmt.Errorf("building %s: %w", b, err)
		}
	}
	return nil
}

func build(root, dir, b string, log io.Writer) error {
	out, err := filepath.Abs(filepath.Join(dir, b))
	if err != nil {
		return err
	}
	var cmd *exec.Cmd
	switch b {
	case "lodge-shim":
		// C, static: it lives beside each running container, and a Go
		// runtime would be most of its memory (issue 20).
		args := []string{"-std=c11", "-O2", "-Wall", "-static", "-o", out}
		cmd = exec.Command(cc(), append(args, ShimSources...)...)
	case "lodge-exec":
		// C, static: each docker exec starts it, and a Go program's
		// start would be most of an exec's time (issue 20).
		args := []string{"-std=c11", "-O2", "-Wall", "-static", "-o", out}
		cmd = exec.Command(cc(), append(args, ExecSources...)...)
	case "lodge-wait":
		// C, static: the foreground lodged becomes it once its daemon
		// answers, and waits as it for the daemon's whole life (issue 20).
		cmd = exec.Command(cc(), "-std=c11", "-O2", "-Wall", "-static", "-o", out, "shim/c/wait.c")
	case "lodge-init", "lodge-keeper":
		// static: lodge-init runs on containers' roots, lodge-keeper in
		// each idle stage maps no libc.
		cmd = exec.Command("go", "build", "-o", out, "./cmd/"+b)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	default:
		cmd = exec.Command("go", "build", "-o", out, "./cmd/"+b)
	}
	cmd.Dir = root // the sources' paths are relative to it
	cmd.Stdout, cmd.Stderr = log, log
	return cmd.Run()
}

// cc is the C compiler: $CC, else cc.
func cc() string {
	if c := os.Getenv("CC"); c != "" {
		return c
	}
	return "cc"
}
