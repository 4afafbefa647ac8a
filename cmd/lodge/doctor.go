package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/lodge-containers/lodge/cgroupv2"
	"github.com/lodge-containers/lodge/paths"
	"github.com/lodge-containers/lodge/userns"
)

// Finding levels: works; works, degraded; lodged cannot work.
const (
	levelOK   = "ok"
	levelWarn = "warn"
	levelFail = "fail"
)

// finding is one line of lodge doctor: what was checked, how it stands,
// and the fix for the user and for an administrator.
type finding struct {
	Level  string `json:"level"` // levelOK, levelWarn or levelFail
	What   string `json:"check"`
	Detail string `json:"detail"`
	You    string `json:"fix,omitempty"`       // what the user can do
	Admin  string `json:"admin_fix,omitempty"` // what an administrator can do
}

var levelMark = map[string]string{levelOK: "✓", levelWarn: "!", levelFail: "✗"}

func doctorCmd(a *app) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check this machine for what lodge needs, say what is degraded and how to fix it",
		Long: `lodge doctor checks, without the daemon, every prerequisite of a rootless
lodged: the runtime dir, user namespaces, subordinate ids and newuidmap,
the data root's filesystem (tried: overlay, xattrs, files owned by your
subordinate ids), /dev/fuse and /dev/net/tun, the network uplink, cgroup
delegation, linger, low ports and free space. Each finding is marked
✓ (works), ! (works, degraded) or ✗ (lodged cannot work) and says the fix:
one you can apply yourself, and one for an administrator. It exits 0 when
everything lodged needs works, 1 otherwise.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fs := doctorChecks(a.env)
			var failed bool
			switch format {
			case "", "text":
				failed = printFindings(a.out, fs)
			case "json":
				enc := json.NewEncoder(a.out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(fs); err != nil {
					return err
				}
				failed = worst(fs) == levelFail
			default:
				return fmt.Errorf("--format: %q is neither text nor json", format)
			}
			if failed {
				return exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "text", "text, or json (a list of {level, check, detail, fix, admin_fix})")
	return cmd
}

func worst(fs []finding) string {
	w := levelOK
	for _, f := range fs {
		if f.Level == levelFail {
			return levelFail
		}
		if f.Level == levelWarn {
			w = levelWarn
		}
	}
	return w
}

func printFindings(w io.Writer, fs []finding) (failed bool) {
	for _, f := range fs {
		fmt.Fprintf(w, "%s %s: %s\n", levelMark[f.Level], f.What, f.Detail)
		if f.You != "" {
			fmt.Fprintf(w, "    fix (you):   %s\n", f.You)
		}
		if f.Admin != "" {
			fmt.Fprintf(w, "    fix (admin): %s\n", f.Admin)
		}
	}
	switch worst(fs) {
	case levelFail:
		fmt.Fprintln(w, "lodged cannot run here until the ✗ above are fixed")
		return true
	case levelWarn:
		fmt.Fprintln(w, "lodge works here; the ! above say what is degraded")
	default:
		fmt.Fprintln(w, "lodge works here with nothing degraded")
	}
	return false
}

func doctorChecks(env paths.Env) []finding {
	var fs []finding
	add := func(f finding) { fs = append(fs, f) }
	u, _ := user.Current()
	name := strconv.Itoa(env.UID)
	if u != nil {
		name = u.Username
	}

	add(runtimeDirFinding(env))
	userNS := userNSFindings()
	fs = append(fs, userNS...)

	// Subordinate ids, and the setuid helpers that map them.
	uids, gids, src, err := userns.LookupSubIDs(env.UID, name)
	switch {
	case err != nil:
		add(finding{Level: levelWarn, What: "subordinate ids", Detail: "unreadable (" + err.Error() + "): lodged uses the single-id map"})
		uids, gids = nil, nil
	case src == userns.SourceNone:
		add(finding{Level: levelWarn, What: "subordinate ids", Detail: "no /etc/subuid or /etc/subgid range for " + name + ": lodged uses the single-id map, where only your own uid exists in containers (files of other owners in images become root's, --user other than 0 is refused)",
			Admin: fmt.Sprintf("usermod --add-subuids 100000-165535 --add-subgids 100000-165535 %s (a range of 65536 no other user has)", name)})
	default:
		add(finding{Level: levelOK, What: "subordinate ids", Detail: fmt.Sprintf("uids %v, gids %v (%s)", uids, gids, src)})
	}
	helpersOK := true
	for _, tool := range []string{"newuidmap", "newgidmap"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			helpersOK = false
			add(finding{Level: levelWarn, What: tool, Detail: "not installed: lodged uses the single-id map", Admin: "apt-get install uidmap (dnf install shadow-utils)"})
			continue
		}
		if why := userns.PrivilegedHelperProblem(p); why != "" {
			helpersOK = false
			add(finding{Level: levelWarn, What: tool, Detail: why + ": lodged uses the single-id map", Admin: "chmod u+s " + p + " (or setcap cap_setuid+ep " + p + "; cap_setgid+ep for newgidmap)"})
			continue
		}
		add(finding{Level: levelOK, What: tool, Detail: p + " is setuid root or has file capabilities"})
	}
	if !helpersOK || src == userns.SourceNone {
		uids, gids = nil, nil // what lodged would do: the single-id map
	}

	// The data root: its filesystem, then tried in a namespace.
	data := dataRootOf(env)
	fs = append(fs, dataRootFindings(env, data, uids, gids, worst(userNS) != levelFail)...)

	var uts unix.Utsname
	_ = unix.Uname(&uts) // cannot fail on Linux; an empty release would read as too old
	if rel := unix.ByteSliceToString(uts.Release[:]); kernelAtLeast(rel, 5, 11) {
		add(finding{Level: levelOK, What: "kernel", Detail: rel + " (rootless overlay needs 5.11)"})
	} else {
		add(finding{Level: levelWarn, What: "kernel", Detail: rel + " is older than 5.11: no rootless overlay; storage uses fuse-overlayfs, else vfs", Admin: "a kernel of 5.11 or later"})
	}

	// Devices.
	if accessible("/dev/fuse") {
		add(finding{Level: levelOK, What: "/dev/fuse", Detail: "usable (fuse-overlayfs, where the kernel's overlay does not work)"})
	} else {
		add(finding{Level: levelWarn, What: "/dev/fuse", Detail: "not usable: no fuse-overlayfs, so where overlay does not work storage falls back to vfs (a full copy per container)", Admin: "modprobe fuse; chmod 0666 /dev/fuse"})
	}
	if accessible("/dev/net/tun") {
		add(finding{Level: levelOK, What: "/dev/net/tun", Detail: "usable"})
	} else {
		add(finding{Level: levelWarn, What: "/dev/net/tun", Detail: "not usable: containers get no uplink to the outside (published ports and container-to-container traffic still work)", Admin: "modprobe tun; chmod 0666 /dev/net/tun (desktop distributions ship it so)"})
	}
	add(uplinkFinding())
	add(cgroupFinding())
	add(lingerFinding(name))
	add(lowPortsFinding())

	if err := paths.CheckOwnedPath(env.ConfigFile(), env.UID, os.Getgid()); err != nil {
		add(finding{Level: levelFail, What: "config", Detail: err.Error(), You: "fix its owner and mode, or set XDG_CONFIG_HOME elsewhere"})
	}
	return fs
}

func runtimeDirFinding(env paths.Env) finding {
	run := env.RuntimeDir()
	err := paths.CheckPrivateDir(run, env.UID)
	switch {
	case err != nil && !errors.Is(err, os.ErrNotExist):
		return finding{Level: levelFail, What: "runtime dir", Detail: err.Error(),
			You: "set XDG_RUNTIME_DIR to a 0700 directory of your own, or remove the planted " + run + " if it is yours to remove"}
	case env.XDGRuntimeDir == "" && env.ExplicitRunDir == "":
		return finding{Level: levelWarn, What: "runtime dir", Detail: run + " (XDG_RUNTIME_DIR is not set: a login without logind, or su; lodge checks the directory is yours)",
			You: "log in through ssh or a display manager, or use machinectl shell " + os.Getenv("USER") + "@, rather than su", Admin: "enable pam_systemd (logind) so users get /run/user/$UID"}
	}
	return finding{Level: levelOK, What: "runtime dir", Detail: run + " (XDG_RUNTIME_DIR)"}
}

// userNSFindings reads the sysctls that allow or forbid unprivileged user
// namespaces; the data root probe then tries one for real.
func userNSFindings() []finding {
	var fs []finding
	sysctl := func(p string) (int, bool) {
		b, err := os.ReadFile(p)
		if err != nil {
			return 0, false
		}
		n, err := strconv.Atoi(strings.TrimSpace(string(b)))
		return n, err == nil
	}
	f := finding{Level: levelOK, What: "user namespaces"}
	var notes []string
	if n, ok := sysctl("/proc/sys/user/max_user_namespaces"); ok {
		notes = append(notes, fmt.Sprintf("user.max_user_namespaces=%d", n))
		if n == 0 {
			f.Level, f.Admin = levelFail, "sysctl -w user.max_user_namespaces=15000 (and in /etc/sysctl.d/ to keep it)"
		}
	}
	if n, ok := sysctl("/proc/sys/kernel/unprivileged_userns_clone"); ok {
		notes = append(notes, fmt.Sprintf("kernel.unprivileged_userns_clone=%d", n))
		if n == 0 {
			f.Level, f.Admin = levelFail, "sysctl -w kernel.unprivileged_userns_clone=1 (and in /etc/sysctl.d/ to keep it)"
		}
	}
	if n, ok := sysctl("/proc/sys/kernel/apparmor_restrict_unprivileged_userns"); ok {
		notes = append(notes, fmt.Sprintf("kernel.apparmor_restrict_unprivileged_userns=%d", n))
		if n == 1 {
			f.Level = levelFail
			f.Admin = "an AppArmor profile that allows userns for lodged (as Ubuntu ships for podman: /etc/apparmor.d/lodged with 'profile lodged /path/to/lodged flags=(unconfined) { userns, }'), or sysctl -w kernel.apparmor_restrict_unprivileged_userns=0"
		}
	}
	f.Detail = "allowed (" + strings.Join(notes, ", ") + ")"
	if f.Level == levelFail {
		f.Detail = "forbidden for unprivileged users (" + strings.Join(notes, ", ") + "): lodged cannot run"
	}
	return append(fs, f)
}

// dataRootOf is the data root lodged would use: daemon.json's data-root,
// else $XDG_DATA_HOME/lodge.
func dataRootOf(env paths.Env) string {
	var c struct {
		DataRoot string `json:"data-root"`
	}
	if b, err := os.ReadFile(env.ConfigFile()); err == nil && json.Unmarshal(b, &c) == nil && c.DataRoot != "" {
		return c.DataRoot
	}
	return env.DataRoot()
}

const overlayfsMagic = 0x794c7630

func dataRootFindings(env paths.Env, data string, uids, gids []userns.Range, tryNS bool) []finding {
	var fs []finding
	add := func(f finding) { fs = append(fs, f) }
	fsName := paths.NetworkFS(data)
	var st unix.Statfs_t
	statfsUp(data, &st)
	if fsName == "" && uint32(st.Type) == overlayfsMagic {
		fsName = "overlay (overlay on overlay: inside a container, or a live system)"
	}
	local := fmt.Sprintf("a directory on local disk, e.g. /var/tmp/lodge-%d: data-root in %s", env.UID, env.ConfigFile())
	switch {
	case paths.NetworkFS(data) != "" && data == env.DataRoot():
		add(finding{Level: levelWarn, What: "data root", Detail: fmt.Sprintf("%s is on %s: lodged keeps its data in $TMPDIR or /var/tmp (lodge-%d) on local disk instead, which other machines do not share", data, fsName, env.UID),
			You: "set data-root in " + env.ConfigFile() + " to the local directory of your choice"})
	case fsName != "":
		add(finding{Level: levelWarn, What: "data root", Detail: fmt.Sprintf("%s is on %s, where overlay, user xattrs or files owned by subordinate ids may not work", data, fsName), You: "put the data root on " + local})
	default:
		if err := paths.CheckOwnedPath(data, env.UID, os.Getgid()); err != nil {
			add(finding{Level: levelFail, What: "data root", Detail: err.Error(), You: "choose one of your own: " + local})
			return fs
		}
		add(finding{Level: levelOK, What: "data root", Detail: data + " (" + fsTypeName(st.Type) + ", local)"})
	}
	if st.Bsize > 0 {
		free := st.Bavail * uint64(st.Bsize)
		f := finding{Level: levelOK, What: "free space", Detail: fmt.Sprintf("%.1f GiB free for %s", float64(free)/(1<<30), data)}
		if free < 2<<30 {
			f.Level, f.You = levelWarn, "free space there (lodge system prune -a), or move the data root: "+local
			f.Detail = fmt.Sprintf("only %.0f MiB free for %s: pulls and builds will fail", float64(free)/(1<<20), data)
		}
		add(f)
	}

	// xattrs: lodged's overlay keeps whiteouts and opaque dirs in user.*.
	if err := tryUserXattr(data); err != nil {
		add(finding{Level: levelWarn, What: "xattrs", Detail: "user.* xattrs do not work in " + data + " (" + err.Error() + "): no native overlay there", You: "put the data root on " + local})
	} else {
		add(finding{Level: levelOK, What: "xattrs", Detail: "user.* xattrs work in " + data})
	}
	if !tryNS {
		return fs
	}
	r, err := probeDataRoot(data, uids, gids)
	switch {
	case err != nil:
		add(finding{Level: levelFail, What: "user namespace", Detail: "trying one failed: " + err.Error()})
		return fs
	case r.Userns != "":
		add(finding{Level: levelFail, What: "user namespace", Detail: "cannot make one: " + r.Userns, Admin: "see the user namespaces and newuidmap findings"})
		return fs
	}
	how := "with your subordinate ids mapped by newuidmap"
	if len(uids) == 0 {
		how = "with the single-id map"
	}
	add(finding{Level: levelOK, What: "user namespace", Detail: "made one " + how})
	if r.Overlay != "" {
		f := finding{Level: levelWarn, What: "overlay", Detail: "rootless overlay does not work in " + data + " (" + r.Overlay + "): storage falls back to fuse-overlayfs, else vfs (a full copy of the image per container)", You: "put the data root on " + local}
		if !accessible("/dev/fuse") || !onPath("fuse-overlayfs") {
			f.Admin = "apt-get install fuse-overlayfs, and /dev/fuse mode 0666"
		}
		add(f)
	} else {
		add(finding{Level: levelOK, What: "overlay", Detail: "rootless overlay (userxattr) works in " + data})
	}
	switch r.Chown {
	case "-":
	case "":
		add(finding{Level: levelOK, What: "subordinate owners", Detail: "files owned by your subordinate ids can be made in " + data})
	default:
		add(finding{Level: levelWarn, What: "subordinate owners", Detail: "files cannot be given your subordinate ids in " + data + " (" + r.Chown + "): images whose files belong to other users fail to unpack", You: "put the data root on " + local})
	}
	return fs
}

// statfsUp statfs's path or its first existing parent.
func statfsUp(path string, st *unix.Statfs_t) {
	for p := path; ; p = filepath.Dir(p) {
		if unix.Statfs(p, st) == nil || p == "/" || p == "." {
			return
		}
	}
}

func fsTypeName(t int64) string {
	switch uint32(t) {
	case unix.EXT4_SUPER_MAGIC:
		return "ext4"
	case unix.XFS_SUPER_MAGIC:
		return "xfs"
	case unix.BTRFS_SUPER_MAGIC:
		return "btrfs"
	case unix.TMPFS_MAGIC:
		return "tmpfs"
	case 0x2fc12fc1:
		return "zfs"
	case overlayfsMagic:
		return "overlay"
	}
	return fmt.Sprintf("filesystem 0x%x", uint32(t))
}

func tryUserXattr(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".doctor-xattr-")
	if err != nil {
		return err
	}
	f.Close()
	defer func() { _ = os.Remove(f.Name()) }() // an empty probe file at worst
	return unix.Setxattr(f.Name(), "user.lodge.doctor", []byte("1"), 0)
}

func uplinkFinding() finding {
	var found []string
	for _, tool := range []string{"pasta", "slirp4netns"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			continue
		}
		found = append(found, tool+" "+toolVersion(p))
	}
	if len(found) == 0 {
		return finding{Level: levelWarn, What: "network uplink", Detail: "neither pasta nor slirp4netns is installed: the built-in gvisor-tap-vsock (slower)", Admin: "apt-get install passt (pasta) or slirp4netns"}
	}
	return finding{Level: levelOK, What: "network uplink", Detail: strings.Join(found, ", ") + " (lodged tries them in this order, then the built-in gvisor-tap-vsock; lodge info says which it took and why not the others)"}
}

// toolVersion is the first line of `tool --version`.
func toolVersion(p string) string {
	out, _ := exec.Command(p, "--version").CombinedOutput()
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	if line == "" {
		line = "no version"
	}
	return "(" + strings.TrimSpace(line) + ")"
}

func cgroupFinding() finding {
	cg, err := cgroupv2.Detect("/sys/fs/cgroup", "/proc/self/cgroup")
	dropIn := "/etc/systemd/system/user@.service.d/delegate.conf with [Service] Delegate=cpu cpuset io memory pids, then systemctl daemon-reload and log in again"
	switch {
	case err != nil:
		return finding{Level: levelWarn, What: "cgroups", Detail: err.Error()}
	case cg.V2Root == "":
		return finding{Level: levelWarn, What: "cgroups", Detail: cg.Summary() + ": resource limits are refused (or ignored with lodged --cgroup-limits=warn)", Admin: "boot with systemd.unified_cgroup_hierarchy=1 (cgroup v2), and " + dropIn}
	case cg.Delegated():
		missing := []string{}
		for _, c := range []string{"cpu", "memory", "pids", "io"} {
			if !cg.Has(c) {
				missing = append(missing, c)
			}
		}
		if len(missing) > 0 {
			return finding{Level: levelWarn, What: "cgroups", Detail: cg.Summary() + "; not delegated: " + strings.Join(missing, " ") + " (limits on those are refused)", Admin: dropIn}
		}
		return finding{Level: levelOK, What: "cgroups", Detail: cg.Summary()}
	}
	return finding{Level: levelWarn, What: "cgroups", Detail: cg.Summary() + " (lodged asks your systemd for a delegated scope when a user bus exists)",
		You: "lodged --cgroup-limits=warn runs containers without the limits it cannot apply", Admin: dropIn}
}

func lingerFinding(name string) finding {
	if lingering(name) {
		return finding{Level: levelOK, What: "linger", Detail: "on: your systemd user manager, lodged and containers keep running after you log out"}
	}
	return finding{Level: levelWarn, What: "linger", Detail: "off: when your last session ends systemd stops your user manager, and lodged and every container with it",
		You: "loginctl enable-linger " + name + " (where the admin allows it)", Admin: "loginctl enable-linger " + name}
}

func lowPortsFinding() finding {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start")
	if err != nil {
		return finding{Level: levelWarn, What: "low ports", Detail: "net.ipv4.ip_unprivileged_port_start unreadable: " + err.Error()}
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if n == 0 {
		return finding{Level: levelOK, What: "low ports", Detail: "net.ipv4.ip_unprivileged_port_start=0: any host port can be published"}
	}
	return finding{Level: levelWarn, What: "low ports", Detail: fmt.Sprintf("net.ipv4.ip_unprivileged_port_start=%d: host ports below %d cannot be published (-p 80:80 fails; -p 8080:80 works)", n, n),
		You: fmt.Sprintf("publish on a port of %d or more", n), Admin: "sysctl -w net.ipv4.ip_unprivileged_port_start=80 (and in /etc/sysctl.d/ to keep it)"}
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
