package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/lodge-containers/lodge/cgroupv2"
	"github.com/lodge-containers/lodge/paths"
	"github.com/lodge-containers/lodge/userns"
)

// finding is one line of lodge doctor: what was checked, how it stands,
// and the fix for the user and for an administrator.
type finding struct {
	level  string // "ok", "warn" (works, degraded) or "fail" (lodge cannot work)
	what   string
	detail string
	you    string // what the user can do
	admin  string // what an administrator can do
}

func doctorCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "doctor",
		Short: "Check this machine for what lodge needs, say what is degraded and how to fix it",
		Long: `lodge doctor checks, without the daemon, every prerequisite of a rootless
lodged: the runtime dir, subordinate ids and newuidmap, the data root's
filesystem, storage, the network uplink and cgroup delegation. Each finding
says what it costs and the fix: one you can apply yourself, and one for an
administrator. It exits 1 when something makes lodged unable to start.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fs := doctorChecks(a.env)
			if printFindings(a.out, fs) {
				return errors.New("lodged cannot start here until the failures above are fixed")
			}
			return nil
		},
	}
}

func printFindings(w io.Writer, fs []finding) (failed bool) {
	for _, f := range fs {
		fmt.Fprintf(w, "%-5s %s: %s\n", f.level, f.what, f.detail)
		if f.you != "" {
			fmt.Fprintf(w, "      fix (you):   %s\n", f.you)
		}
		if f.admin != "" {
			fmt.Fprintf(w, "      fix (admin): %s\n", f.admin)
		}
		failed = failed || f.level == "fail"
	}
	return failed
}

func doctorChecks(env paths.Env) []finding {
	var fs []finding
	add := func(f finding) { fs = append(fs, f) }

	// Runtime dir.
	run := env.RuntimeDir()
	switch err := paths.CheckPrivateDir(run, env.UID); {
	case err == nil || errors.Is(err, os.ErrNotExist):
		f := finding{level: "ok", what: "runtime dir", detail: run}
		if env.XDGRuntimeDir == "" && env.ExplicitRunDir == "" {
			f.level, f.detail = "warn", run+" (no XDG_RUNTIME_DIR: a login without logind, or su)"
			f.you = "nothing needed; lodge checks that the directory is yours"
			f.admin = "enable pam_systemd (logind) so users get /run/user/$UID"
		}
		add(f)
	default:
		add(finding{level: "fail", what: "runtime dir", detail: err.Error(),
			you: "set XDG_RUNTIME_DIR to a 0700 directory of your own, or remove the planted " + run + " if it is yours to remove"})
	}

	// Subordinate ids and the helpers that map them.
	u, _ := user.Current()
	name := ""
	if u != nil {
		name = u.Username
	}
	uids, gids, src, err := userns.LookupSubIDs(env.UID, name)
	switch {
	case err != nil:
		add(finding{level: "warn", what: "subordinate ids", detail: "unreadable: " + err.Error() + "; lodged uses the single-id map"})
	case src == userns.SourceNone:
		add(finding{level: "warn", what: "subordinate ids", detail: "none for " + name + ": only your own uid exists in containers (single-id map); images whose files belong to other users run with them owned by root, --user other than 0 is refused",
			admin: fmt.Sprintf("usermod --add-subuids 100000-165535 --add-subgids 100000-165535 %s", name)})
	default:
		add(finding{level: "ok", what: "subordinate ids", detail: fmt.Sprintf("uids %v, gids %v (%s)", uids, gids, src)})
		for _, tool := range []string{"newuidmap", "newgidmap"} {
			p, err := exec.LookPath(tool)
			if err != nil {
				add(finding{level: "warn", what: tool, detail: "not installed: lodged uses the single-id map", admin: "apt-get install uidmap (or your distribution's shadow-utils)"})
				continue
			}
			if why := userns.PrivilegedHelperProblem(p); why != "" {
				add(finding{level: "warn", what: tool, detail: why + ": lodged uses the single-id map", admin: "chmod u+s " + p + " (or setcap cap_setuid+ep " + p + ")"})
				continue
			}
			add(finding{level: "ok", what: tool, detail: p})
		}
	}

	// Data root.
	data := env.DataRoot()
	if fsName := paths.NetworkFS(data); fsName != "" {
		add(finding{level: "warn", what: "data root", detail: fmt.Sprintf("%s is on %s: lodged keeps its data in $TMPDIR or /var/tmp (lodge-%d) on local disk instead, which another machine does not share", data, fsName, env.UID),
			you: "set data-root in " + env.ConfigFile() + " to a local directory to choose where"})
	} else if err := paths.CheckOwnedPath(data, env.UID, os.Getgid()); err != nil {
		add(finding{level: "fail", what: "data root", detail: err.Error(), you: "choose one of your own: data-root in " + env.ConfigFile() + " or lodged --data-root"})
	} else {
		add(finding{level: "ok", what: "data root", detail: data})
	}

	// Storage: native rootless overlay needs Linux 5.11.
	var uts unix.Utsname
	unix.Uname(&uts)
	rel := unix.ByteSliceToString(uts.Release[:])
	if kernelAtLeast(rel, 5, 11) {
		add(finding{level: "ok", what: "storage", detail: "kernel " + rel + " has rootless overlay"})
	} else if _, err := exec.LookPath("fuse-overlayfs"); err == nil && accessible("/dev/fuse") {
		add(finding{level: "warn", what: "storage", detail: "kernel " + rel + " is older than 5.11: fuse-overlayfs (slower than the kernel's overlay)"})
	} else {
		add(finding{level: "warn", what: "storage", detail: "kernel " + rel + " is older than 5.11 and fuse-overlayfs cannot run: vfs (every container copies its image)",
			admin: "apt-get install fuse-overlayfs, and /dev/fuse mode 0666"})
	}

	// Network uplink.
	switch {
	case !accessible("/dev/net/tun"):
		add(finding{level: "warn", what: "network", detail: "/dev/net/tun is not usable: containers get no uplink (published ports and loopback still work)", admin: "chmod 0666 /dev/net/tun (desktop distributions ship it so)"})
	case onPath("pasta") || onPath("slirp4netns"):
		add(finding{level: "ok", what: "network", detail: "uplink tools found: " + strings.Join(allOnPath("pasta", "slirp4netns"), ", ") + " (lodged takes the first that works; lodge info says which, and why not the others)"})
	default:
		add(finding{level: "ok", what: "network", detail: "uplink by the built-in gvisor-tap-vsock (slower than slirp4netns or pasta)", admin: "apt-get install slirp4netns or passt for a faster uplink"})
	}

	// Cgroups.
	cg, err := cgroupv2.Detect("/sys/fs/cgroup", "/proc/self/cgroup")
	switch {
	case err != nil:
		add(finding{level: "warn", what: "cgroups", detail: err.Error()})
	case cg.Delegated():
		add(finding{level: "ok", what: "cgroups", detail: cg.Summary()})
	default:
		add(finding{level: "warn", what: "cgroups", detail: cg.Summary() + " (lodged asks your systemd for a delegated scope when a user bus exists)",
			you:   "lodged --cgroup-limits=warn runs containers without the limits it cannot apply",
			admin: "a systemd drop-in for user@.service with Delegate=cpu cpuset io memory pids"})
	}

	// Configuration.
	if err := paths.CheckOwnedPath(env.ConfigFile(), env.UID, os.Getgid()); err != nil {
		add(finding{level: "fail", what: "config", detail: err.Error(), you: "fix its owner and mode, or set XDG_CONFIG_HOME elsewhere"})
	}
	return fs
}

// kernelAtLeast compares a release string such as "6.1.0-27-amd64".
func kernelAtLeast(release string, major, minor int) bool {
	parts := strings.SplitN(release, ".", 3)
	if len(parts) < 2 {
		return false
	}
	ma, _ := strconv.Atoi(parts[0])
	mi, _ := strconv.Atoi(strings.TrimFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' }))
	return ma > major || (ma == major && mi >= minor)
}

func accessible(dev string) bool { return unix.Access(dev, unix.R_OK|unix.W_OK) == nil }

func onPath(name string) bool { _, err := exec.LookPath(name); return err == nil }

func allOnPath(names ...string) []string {
	var found []string
	for _, n := range names {
		if onPath(n) {
			found = append(found, n)
		}
	}
	return found
}
