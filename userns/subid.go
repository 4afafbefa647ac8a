package userns

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/lodge-containers/lodge/errdefs"
)

// Range is a run of subordinate ids on the host: Start, Start+1, ...,
// Start+Length-1.
type Range struct {
	Start  int
	Length int
}

func (r Range) String() string { return fmt.Sprintf("%d:%d", r.Start, r.Length) }

// ParseSubIDs reads a subuid or subgid file and returns the ranges that
// belong to the user, named either by uid or by name, in file order.
// Blank lines and '#' comments are skipped. A malformed line is an error
// wrapping errdefs.ErrInvalidArgument that names the line: a broken file is
// better reported than half-read, since the ranges it would lose decide
// which files in images can be owned correctly.
func ParseSubIDs(r io.Reader, uid int, name string) ([]Range, error) {
	uidS := strconv.Itoa(uid)
	var out []Range
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		parts := strings.Split(line, ":")
		if len(parts) != 3 || parts[0] == "" {
			return nil, errdefs.InvalidArgumentf("line %d %q: want owner:start:count", n, line)
		}
		start, err1 := strconv.ParseUint(parts[1], 10, 32)
		count, err2 := strconv.ParseUint(parts[2], 10, 32)
		if err1 != nil || err2 != nil || count == 0 || start+count > 1<<32-1 {
			return nil, errdefs.InvalidArgumentf("line %d %q: start and count must be numbers, count above 0, within 32 bits", n, line)
		}
		if parts[0] == uidS || (name != "" && parts[0] == name) {
			out = append(out, Range{Start: int(start), Length: int(count)})
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// SubIDSource is where LookupSubIDs found the ranges.
type SubIDSource string

// Sources of subordinate ids.
const (
	SourceGetsubids SubIDSource = "getsubids"
	SourceFiles     SubIDSource = "/etc/subuid"
	SourceNone      SubIDSource = "none"
)

// LookupSubIDs finds the user's subuid and subgid ranges: getsubids first
// (it also sees ranges from NSS/LDAP, common on HPC sites), then the files.
// No ranges is not an error: the caller falls back to a single-id map.
// A malformed file is an error.
func LookupSubIDs(uid int, name string) (uids, gids []Range, src SubIDSource, err error) {
	if path, lerr := exec.LookPath("getsubids"); lerr == nil {
		u, uerr := runGetsubids(path, name, false)
		g, gerr := runGetsubids(path, name, true)
		if uerr == nil && gerr == nil && len(u) > 0 && len(g) > 0 {
			return u, g, SourceGetsubids, nil
		}
	}
	uids, err = parseFile("/etc/subuid", uid, name)
	if err != nil {
		return nil, nil, SourceNone, err
	}
	gids, err = parseFile("/etc/subgid", uid, name)
	if err != nil {
		return nil, nil, SourceNone, err
	}
	if len(uids) == 0 || len(gids) == 0 {
		return nil, nil, SourceNone, nil
	}
	return uids, gids, SourceFiles, nil
}

func parseFile(path string, uid int, name string) ([]Range, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, err := ParseSubIDs(f, uid, name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

// runGetsubids parses getsubids output: "0: user 100000 65536" per range.
func runGetsubids(path, name string, group bool) ([]Range, error) {
	args := []string{name}
	if group {
		args = []string{"-g", name}
	}
	out, err := exec.Command(path, args...).Output()
	if err != nil {
		return nil, err
	}
	return parseGetsubids(out)
}

func parseGetsubids(out []byte) ([]Range, error) {
	var rs []Range
	for _, line := range bytes.Split(out, []byte("\n")) {
		f := strings.Fields(string(line))
		if len(f) == 0 {
			continue
		}
		if len(f) != 4 {
			return nil, errdefs.InvalidArgumentf("getsubids: unexpected line %q", line)
		}
		start, err1 := strconv.Atoi(f[2])
		count, err2 := strconv.Atoi(f[3])
		if err1 != nil || err2 != nil || count <= 0 {
			return nil, errdefs.InvalidArgumentf("getsubids: unexpected line %q", line)
		}
		rs = append(rs, Range{Start: start, Length: count})
	}
	return rs, nil
}

// PrivilegedHelperProblem says why the newuidmap or newgidmap at path
// cannot work for an unprivileged user ("" when it looks usable): it must
// be setuid root or carry file capabilities. An install that lost both
// (copied without -p, a nosuid mount) would otherwise fail later inside
// rootlesskit with only "Operation not permitted".
func PrivilegedHelperProblem(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return err.Error()
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if ok && fi.Mode()&os.ModeSetuid != 0 && st.Uid == 0 {
		var fs unix.Statfs_t
		if unix.Statfs(path, &fs) == nil && fs.Flags&unix.ST_NOSUID != 0 {
			return path + " is setuid but on a nosuid mount"
		}
		return ""
	}
	if _, err := unix.Getxattr(path, "security.capability", nil); err == nil {
		return ""
	}
	return path + " is neither setuid root nor given file capabilities (a broken uidmap install)"
}
