package daemon

import (
	"bufio"
	"strconv"
	"strings"

	"github.com/lodge-containers/lodge/errdefs"
	"github.com/lodge-containers/lodge/rootdir"
)

// resolveUser turns "name", "uid", "name:group" or "uid:gid" into ids,
// reading the passwd and group files of the container whose root is root
// (e.g. /proc/PID/root). Unknown names are Docker's error.
func resolveUser(root, user string) (uid, gid int, groups []int, err error) {
	if user == "" {
		user = "0"
	}
	u, g, hasG := strings.Cut(user, ":")
	uid, gid = -1, -1
	var name string
	if n, err := strconv.Atoi(u); err == nil {
		uid = n
	}
	for _, f := range readColonFile(root, "/etc/passwd", 7) {
		if f[0] == u || (uid >= 0 && f[2] == strconv.Itoa(uid)) {
			uid, _ = strconv.Atoi(f[2])
			if !hasG {
				gid, _ = strconv.Atoi(f[3])
			}
			name = f[0]
			break
		}
	}
	if uid < 0 {
		return 0, 0, nil, errdefs.InvalidArgumentf("unable to find user %s: no matching entries in passwd file", u)
	}
	if hasG {
		if n, err := strconv.Atoi(g); err == nil {
			gid = n
		} else {
			for _, f := range readColonFile(root, "/etc/group", 4) {
				if f[0] == g {
					gid, _ = strconv.Atoi(f[2])
				}
			}
			if gid < 0 {
				return 0, 0, nil, errdefs.InvalidArgumentf("unable to find group %s: no matching entries in group file", g)
			}
		}
	}
	if gid < 0 {
		gid = 0
	}
	if name != "" {
		for _, f := range readColonFile(root, "/etc/group", 4) {
			for _, m := range strings.Split(f[3], ",") {
				if m == name {
					if n, err := strconv.Atoi(f[2]); err == nil && n != gid {
						groups = append(groups, n)
					}
				}
			}
		}
	}
	return uid, gid, groups, nil
}

// readColonFile reads a passwd-like file inside root (symlinks confined
// to it by rootdir); a missing or unreadable one has no entries.
func readColonFile(root, path string, fields int) [][]string {
	r, err := rootdir.Open(root)
	if err != nil {
		return nil
	}
	defer r.Close()
	f, err := r.OpenFile(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out [][]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.Split(sc.Text(), ":")
		if len(parts) >= fields {
			out = append(out, parts)
		}
	}
	return out
}

// resolveGroup turns a --group-add name or number into a gid.
func resolveGroup(root, g string) (int, error) {
	if n, err := strconv.Atoi(g); err == nil {
		return n, nil
	}
	for _, f := range readColonFile(root, "/etc/group", 4) {
		if f[0] == g {
			if n, err := strconv.Atoi(f[2]); err == nil {
				return n, nil
			}
		}
	}
	return 0, errdefs.InvalidArgumentf("unable to find group %s: no matching entries in group file", g)
}

func toUint32(ids []int) []uint32 {
	out := make([]uint32, 0, len(ids))
	for _, id := range ids {
		out = append(out, uint32(id))
	}
	return out
}

// idSpace is what ids lodged's user namespace holds: every id of the
// subordinate range, or with singleID (no range) only 0, the user.
type idSpace struct{ singleID bool }

// checkUserMapped refuses, at create, a numeric --user that lodged's
// single-id map cannot hold; names are resolved against the image at start
// and refused there the same way.
func (m idSpace) checkUserMapped(user string) error {
	if !m.singleID || user == "" {
		return nil
	}
	u, g, _ := strings.Cut(user, ":")
	uid, uerr := strconv.Atoi(u)
	gid, gerr := strconv.Atoi(g)
	if uerr != nil {
		uid = 0
	}
	if gerr != nil {
		gid = 0
	}
	return m.refuseUnmapped(uid, gid)
}

// refuseUnmapped says why uid:gid cannot run under a single-id map, and
// what would let it.
func (m idSpace) refuseUnmapped(uid, gid int) error {
	if !m.singleID || (uid == 0 && gid == 0) {
		return nil
	}
	return errdefs.InvalidArgumentf("user %d:%d does not exist in lodge's containers: lodged runs with a single-id map (you have no subuid/subgid range), so only uid 0 and gid 0 (you, outside) exist. Run as root in the container (--user 0), or ask an administrator for a range: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 $USER, then restart lodged", uid, gid)
}

// mappedGroups drops the supplementary groups a single-id map cannot hold:
// setgroups would fail on them, and the files they could open belong to
// the one mapped id anyway.
func (m idSpace) mappedGroups(groups []int) []int {
	if !m.singleID {
		return groups
	}
	var out []int
	for _, g := range groups {
		if g == 0 {
			out = append(out, g)
		}
	}
	return out
}
