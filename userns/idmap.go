package userns

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// IDMap is one line of a uid_map or gid_map: ids ContainerID.. inside the
// namespace are HostID.. outside, Size of them.
type IDMap struct {
	ContainerID int
	HostID      int
	Size        int
}

func (m IDMap) String() string { return fmt.Sprintf("%d:%d:%d", m.ContainerID, m.HostID, m.Size) }

// BuildMap returns the map lodged's namespace gets for one kind of id: the
// user's own id as 0, then the subordinate ranges packed from 1 upwards.
// A range that contains the user's own id is split around it, because the
// kernel refuses a map that names a host id twice.
func BuildMap(ownID int, ranges []Range) []IDMap {
	m := []IDMap{{ContainerID: 0, HostID: ownID, Size: 1}}
	next := 1
	add := func(start, length int) {
		if length <= 0 {
			return
		}
		m = append(m, IDMap{ContainerID: next, HostID: start, Size: length})
		next += length
	}
	for _, r := range ranges {
		if ownID >= r.Start && ownID < r.Start+r.Length {
			add(r.Start, ownID-r.Start)
			add(ownID+1, r.Start+r.Length-ownID-1)
			continue
		}
		add(r.Start, r.Length)
	}
	return m
}

// MapSize is how many ids a map covers.
func MapSize(m []IDMap) int {
	n := 0
	for _, e := range m {
		n += e.Size
	}
	return n
}

// FormatMap renders a map the way `lodge info` prints it: "0:1000:1,1:100000:65536".
func FormatMap(m []IDMap) string {
	s := make([]string, len(m))
	for i, e := range m {
		s[i] = e.String()
	}
	return strings.Join(s, ",")
}

// ParseProcMap parses /proc/PID/uid_map or gid_map contents.
func ParseProcMap(data string) ([]IDMap, error) {
	var m []IDMap
	for _, line := range strings.Split(strings.TrimSpace(data), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 {
			return nil, fmt.Errorf("id map line %q: want 3 fields", line)
		}
		var v [3]int
		for i := range f {
			n, err := strconv.Atoi(f[i])
			if err != nil {
				return nil, fmt.Errorf("id map line %q: %w", line, err)
			}
			v[i] = n
		}
		m = append(m, IDMap{ContainerID: v[0], HostID: v[1], Size: v[2]})
	}
	return m, nil
}

// CurrentMaps reads the uid and gid maps of the calling process's namespace.
func CurrentMaps() (uids, gids []IDMap, err error) {
	u, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		return nil, nil, err
	}
	g, err := os.ReadFile("/proc/self/gid_map")
	if err != nil {
		return nil, nil, err
	}
	if uids, err = ParseProcMap(string(u)); err != nil {
		return nil, nil, err
	}
	if gids, err = ParseProcMap(string(g)); err != nil {
		return nil, nil, err
	}
	return uids, gids, nil
}
