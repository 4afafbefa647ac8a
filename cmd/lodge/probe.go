package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/lodge-containers/lodge/userns"
)

// lodge doctor tries the data root the way lodged's storage uses it: in a
// user namespace of its own, an overlay mount with userxattr and a file
// chowned to a subordinate id. That takes a child process (this binary
// again) in new user and mount namespaces.
const (
	envProbe    = "_LODGE_DOCTOR_PROBE" // "wait": maps come from newuidmap; "run": maps are written
	envProbeDir = "_LODGE_DOCTOR_DIR"
)

// probeResult is what the child found; an empty string means it worked.
type probeResult struct {
	Userns  string `json:"userns"`
	Overlay string `json:"overlay"`
	Chown   string `json:"chown"` // "-" when not tried (single-id map)
}

// isProbe tells main that this process is the doctor's namespace child.
func isProbe() bool { return os.Getenv(envProbe) != "" }

// runProbe is the child. Started unmapped ("wait"), it waits on stdin
// for the parent's newuidmap, then re-executes itself: only an exec
// with uid 0 mapped gives it its capabilities in the namespace.
func runProbe() {
	if os.Getenv(envProbe) == "wait" {
		var b [1]byte
		if n, _ := os.Stdin.Read(b[:]); n != 1 {
			os.Exit(2)
		}
		_ = os.Setenv(envProbe, "run") // fails only on a name with '=' or NUL
		exe, _ := os.Executable()
		err := syscall.Exec(exe, os.Args, os.Environ())
		_ = json.NewEncoder(os.Stdout).Encode(probeResult{Userns: "re-exec in the namespace: " + err.Error()})
		os.Exit(0)
	}
	dir := os.Getenv(envProbeDir)
	r := probeResult{Chown: "-"}
	if os.Getenv("_LODGE_DOCTOR_SUBIDS") == "1" {
		r.Chown = ""
	}
	r.Overlay = errString(tryOverlay(dir))
	if r.Chown == "" {
		f := filepath.Join(dir, "owned")
		if err := os.WriteFile(f, nil, 0o600); err != nil {
			r.Chown = err.Error()
		} else {
			r.Chown = errString(os.Lchown(f, 1, 1))
		}
	}
	_ = json.NewEncoder(os.Stdout).Encode(r) // the parent reads it; if it is gone no one needs it
}

func tryOverlay(dir string) error {
	var ds []string
	for _, d := range []string{"lower", "upper", "work", "merged"} {
		p := filepath.Join(dir, d)
		if err := os.Mkdir(p, 0o700); err != nil {
			return err
		}
		ds = append(ds, p)
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s,userxattr", ds[0], ds[1], ds[2])
	if err := unix.Mount("overlay", ds[3], "overlay", 0, opts); err != nil {
		return fmt.Errorf("mount -t overlay -o userxattr: %w", err)
	}
	defer func() { _ = unix.Unmount(ds[3], unix.MNT_DETACH) }() // the probe's mount namespace ends with it
	if err := os.WriteFile(filepath.Join(ds[3], "f"), []byte("x"), 0o600); err != nil {
		return fmt.Errorf("writing through overlay: %w", err)
	}
	if err := os.Remove(filepath.Join(ds[3], "f")); err != nil {
		return fmt.Errorf("a whiteout in overlay: %w", err)
	}
	return nil
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// probeDataRoot runs the child on a fresh directory under dataRoot. With
// subordinate ranges (uids and gids non-empty) it maps them through
// newuidmap/newgidmap as lodged does; without, only the user's own id.
// An error means the probe itself could not run.
func probeDataRoot(dataRoot string, uids, gids []userns.Range) (probeResult, error) {
	if err := os.MkdirAll(dataRoot, 0o700); err != nil {
		return probeResult{}, err
	}
	dir, err := os.MkdirTemp(dataRoot, ".doctor-")
	if err != nil {
		return probeResult{}, err
	}
	defer func() { _ = os.RemoveAll(dir) }() // a probe's scratch directory
	exe, err := os.Executable()
	if err != nil {
		return probeResult{}, err
	}
	sub := len(uids) > 0 && len(gids) > 0
	cmd := exec.Command(exe, "doctor")
	cmd.Env = append(os.Environ(), envProbeDir+"="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS, Pdeathsig: syscall.SIGKILL}
	var stdin *os.File
	if sub {
		cmd.Env = append(cmd.Env, envProbe+"=wait", "_LODGE_DOCTOR_SUBIDS=1")
		r, w, err := os.Pipe()
		if err != nil {
			return probeResult{}, err
		}
		defer r.Close()
		cmd.Stdin, stdin = r, w
	} else {
		cmd.Env = append(cmd.Env, envProbe+"=run")
		cmd.SysProcAttr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}}
		cmd.SysProcAttr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}}
	}
	out, err := os.CreateTemp("", "lodge-doctor-")
	if err != nil {
		return probeResult{}, err
	}
	defer func() { _ = os.Remove(out.Name()) }() // a probe's scratch file
	defer out.Close()
	cmd.Stdout = out
	if err := cmd.Start(); err != nil {
		if stdin != nil {
			stdin.Close()
		}
		return probeResult{Userns: err.Error()}, nil
	}
	if sub {
		defer stdin.Close()
		pid := strconv.Itoa(cmd.Process.Pid)
		for _, m := range []struct {
			tool string
			id   int
			r    userns.Range
		}{{"newuidmap", os.Getuid(), uids[0]}, {"newgidmap", os.Getgid(), gids[0]}} {
			b, err := exec.Command(m.tool, pid, "0", strconv.Itoa(m.id), "1", "1", strconv.Itoa(m.r.Start), strconv.Itoa(m.r.Length)).CombinedOutput()
			if err != nil {
				cmd.Process.Kill()
				_ = cmd.Wait() // reaps the killed child: its exit says nothing new
				return probeResult{Userns: fmt.Sprintf("%s: %v: %s", m.tool, err, firstLineOf(string(b)))}, nil
			}
		}
		_, _ = stdin.Write([]byte{1}) // a child gone shows in its result below
	}
	if err := cmd.Wait(); err != nil {
		return probeResult{}, fmt.Errorf("the namespace probe: %w", err)
	}
	var r probeResult
	b, _ := os.ReadFile(out.Name())
	if err := json.Unmarshal(b, &r); err != nil {
		return probeResult{}, errors.New("the namespace probe said nothing readable")
	}
	return r, nil
}

func firstLineOf(s string) string {
	for i, c := range s {
		if c == '\n' {
			return s[:i]
		}
	}
	return s
}
