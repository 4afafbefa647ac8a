package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

type doctorFinding struct {
	Level, Check, Detail, Fix, AdminFix string
}

// doctorJSON runs lodge doctor --format json and indexes it by check.
func doctorJSON(t *testing.T, r result) map[string]doctorFinding {
	t.Helper()
	var fs []struct {
		Level    string `json:"level"`
		Check    string `json:"check"`
		Detail   string `json:"detail"`
		Fix      string `json:"fix"`
		AdminFix string `json:"admin_fix"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &fs); err != nil {
		t.Fatalf("lodge doctor --format json: %v\n%s", err, r)
	}
	m := map[string]doctorFinding{}
	for _, f := range fs {
		if f.Level != "ok" && f.Level != "warn" && f.Level != "fail" {
			t.Errorf("finding %q has level %q", f.Check, f.Level)
		}
		m[f.Check] = doctorFinding{f.Level, f.Check, f.Detail, f.Fix, f.AdminFix}
	}
	return m
}

// TestDoctorHere: on this machine, as the test user with subordinate ids,
// every check is there, what lodged needs works (exit 0), and the data
// root was tried for real: overlay and subordinate owners in a namespace
// mapped by newuidmap. A runtime dir others can read is a failure.
func TestDoctorHere(t *testing.T) {
	s := newSession(t, lookupUser(t, "LODGE_TEST_USER"))
	r := s.run("lodge", "doctor")
	if r.code != 0 {
		t.Fatalf("lodge doctor on this machine: %s", r)
	}
	for _, want := range []string{
		"✓ user namespaces: allowed (user.max_user_namespaces=",
		"✓ subordinate ids: uids [",
		"✓ newuidmap: ", "✓ newgidmap: ",
		"✓ data root: " + filepath.Join(s.data, "lodge") + " (",
		"✓ user namespace: made one with your subordinate ids mapped by newuidmap",
		"✓ overlay: rootless overlay (userxattr) works in ",
		"✓ subordinate owners: ",
		"✓ xattrs: ",
		"✓ /dev/fuse: ", "✓ /dev/net/tun: ",
		"network uplink: pasta (", "slirp4netns (slirp4netns version ",
		"cgroups: ", "linger: ", "low ports: net.ipv4.ip_unprivileged_port_start=", "free space: ",
		"✓ runtime dir: " + s.runDir + " (XDG_RUNTIME_DIR)",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("lodge doctor lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "✗") {
		t.Errorf("a failure on this machine:\n%s", r.stdout)
	}
	js := doctorJSON(t, s.must("lodge", "doctor", "--format", "json"))
	for _, c := range []string{"runtime dir", "user namespaces", "subordinate ids", "newuidmap", "newgidmap", "data root", "free space", "xattrs", "user namespace", "overlay", "subordinate owners", "kernel", "/dev/fuse", "/dev/net/tun", "network uplink", "cgroups", "linger", "low ports"} {
		if _, ok := js[c]; !ok {
			t.Errorf("lodge doctor --format json has no %q finding", c)
		}
	}
	if f := js["linger"]; f.Level == "warn" && !strings.Contains(f.AdminFix, "loginctl enable-linger "+s.u.name) {
		t.Errorf("linger off without the fix: %+v", f)
	}
	// lodged refuses a runtime dir others can open: so does doctor.
	os.Chmod(s.xdgRun, 0o755)
	os.MkdirAll(s.runDir, 0o755)
	os.Chown(s.runDir, s.u.uid, s.u.gid)
	os.Chmod(s.runDir, 0o755)
	r = s.run("lodge", "doctor")
	if r.code != 1 || !strings.Contains(r.stdout, "✗ runtime dir: ") || !strings.Contains(r.stdout, "lodged cannot run here") {
		t.Errorf("lodge doctor with a 0755 runtime dir: %s", r)
	}
}

// TestDoctorNoSubuid: a user with no /etc/subuid range gets the admin's
// usermod line, and the data root is tried under the single-id map; that
// is degraded, not broken (exit 0).
func TestDoctorNoSubuid(t *testing.T) {
	u := lookupUser(t, "LODGE_TEST_NOSUB_USER")
	s := newSession(t, u)
	r := s.run("lodge", "doctor")
	if r.code != 0 {
		t.Fatalf("lodge doctor without subordinate ids: %s", r)
	}
	for _, want := range []string{
		"! subordinate ids: no /etc/subuid or /etc/subgid range for " + u.name,
		"fix (admin): usermod --add-subuids 100000-165535 --add-subgids 100000-165535 " + u.name,
		"✓ user namespace: made one with the single-id map",
		"✓ overlay: ",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("lodge doctor lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "subordinate owners") {
		t.Errorf("subordinate owners tried without subordinate ids:\n%s", r.stdout)
	}
	// lodged runs degraded: lodge info sends the user to doctor.
	s.start()
	if r := s.must("lodge", "info"); !strings.Contains(r.stderr, "single-id map") || !strings.Contains(r.stderr, "'lodge doctor' says what is missing and the fix") {
		t.Errorf("lodge info under a single-id map does not point to lodge doctor: %s", r)
	}
}

// TestDoctorNewuidmapHidden: newuidmap missing, or present without its
// setuid bit, in a private mount namespace: doctor names the problem and
// the admin's fix, and tries the single-id map, as lodged would.
func TestDoctorNewuidmapHidden(t *testing.T) {
	u := lookupUser(t, "LODGE_TEST_USER")
	if os.Getuid() != 0 {
		skipOrFail(t, "needs root to replace newuidmap in a private mount namespace")
	}
	nu, err := exec.LookPath("newuidmap")
	if err != nil {
		skipOrFail(t, "newuidmap is not installed")
	}
	s := newSession(t, u)
	broken := filepath.Join(s.base, "newuidmap")
	b, err := os.ReadFile(nu)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(broken, b, 0o755); err != nil { // no setuid bit
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, over, want, admin string }{
		// /dev/null is not executable: to exec.LookPath, not installed.
		{"missing", "/dev/null", "! newuidmap: not installed: lodged uses the single-id map", "fix (admin): apt-get install uidmap"},
		{"not setuid", broken, "! newuidmap: " + nu + " is neither setuid root nor given file capabilities", "fix (admin): chmod u+s " + nu},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := strings.Join(quoteAll(s.env()), " ")
			script := fmt.Sprintf("mount --bind %s %s && exec setpriv --reuid %d --regid %d --clear-groups env -i %s %s doctor",
				tc.over, nu, u.uid, u.gid, env, filepath.Join(binDir, "lodge"))
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, "unshare", "-m", "--propagation", "private", "sh", "-c", script)
			cmd.Dir = s.home
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("lodge doctor: %v\n%s", err, out)
			}
			for _, want := range []string{tc.want, tc.admin, "✓ user namespace: made one with the single-id map"} {
				if !strings.Contains(string(out), want) {
					t.Errorf("lodge doctor lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

// TestDoctorOverlayOnOverlay: a data root on an overlay filesystem (a
// live system, a container), where the kernel refuses a rootless overlay
// on top: doctor says so from the filesystem and from trying, and how to
// fix it; lodged still works there (fuse-overlayfs or vfs): exit 0.
func TestDoctorOverlayOnOverlay(t *testing.T) {
	u := lookupUser(t, "LODGE_TEST_USER")
	if os.Getuid() != 0 {
		skipOrFail(t, "needs root to mount an overlay for the data root")
	}
	s := newSession(t, u)
	ovl := filepath.Join(s.base, "ovl")
	for _, d := range []string{"lower", "upper", "work", "merged"} {
		if err := os.MkdirAll(filepath.Join(ovl, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	merged := filepath.Join(ovl, "merged")
	opts := fmt.Sprintf("lowerdir=%s/lower,upperdir=%s/upper,workdir=%s/work", ovl, ovl, ovl)
	if err := syscall.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		t.Fatalf("mount overlay: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(merged, syscall.MNT_DETACH) })
	os.Chown(merged, u.uid, u.gid)
	os.Chmod(ovl, 0o755)
	s.extraEnv = append(s.extraEnv, "XDG_DATA_HOME="+merged)
	r := s.run("lodge", "doctor")
	if r.code != 0 {
		t.Fatalf("lodge doctor with the data root on overlay: %s", r)
	}
	for _, want := range []string{
		"! data root: " + filepath.Join(merged, "lodge") + " is on overlay (overlay on overlay",
		"! overlay: rootless overlay does not work in " + filepath.Join(merged, "lodge") + " (mount -t overlay -o userxattr: ",
		"put the data root on a directory on local disk",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("lodge doctor lacks %q:\n%s", want, r.stdout)
		}
	}
	js := doctorJSON(t, s.must("lodge", "doctor", "--format", "json"))
	if f := js["overlay"]; f.Level != "warn" || !strings.Contains(f.Fix, "data-root in ") {
		t.Errorf("overlay finding in json: %+v", f)
	}
}
