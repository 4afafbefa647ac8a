package build

import (
	"strconv"
	"strings"

	"github.com/lodge-containers/lodge/errdefs"
)

// lookupOwner resolves --chown's user[:group], by number or by name in
// the target image's /etc/passwd and /etc/group. A user alone gives the
// group of the same number, as Docker documents.
func lookupOwner(t *targetFS, chown string) (idPair, error) {
	user, group, hasGroup := strings.Cut(chown, ":")
	uid, err := lookupID(t, "/etc/passwd", user)
	if err != nil {
		return idPair{}, err
	}
	gid := uid
	if hasGroup {
		if gid, err = lookupID(t, "/etc/group", group); err != nil {
			return idPair{}, err
		}
	}
	return idPair{uid: uid, gid: gid}, nil
}

func lookupID(t *targetFS, file, name string) (int, error) {
	if n, err := strconv.Atoi(name); err == nil && n >= 0 {
		return n, nil
	}
	kind := "user"
	if file == "/etc/group" {
		kind = "group"
	}
	b, err := t.readFile(file)
	if err != nil {
		return 0, errdefs.InvalidArgumentf("unable to find %s %s: no %s in the image", kind, name, file)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(line, ":")
		if len(f) >= 3 && f[0] == name {
			if n, err := strconv.Atoi(f[2]); err == nil {
				return n, nil
			}
		}
	}
	return 0, errdefs.InvalidArgumentf("unable to find %s %s: no matching entries in %s", kind, name, file)
}
