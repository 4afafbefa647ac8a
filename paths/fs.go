package paths

import (
	"path/filepath"

	"golang.org/x/sys/unix"
)

// NetworkFS names the network, cluster or FUSE filesystem path is on (or
// its first existing parent, for a path still to be made), or "" for a
// local one. On those, overlay upper directories, user xattrs or files
// owned by subordinate ids do not work (NFS with root squash refuses the
// chown outright).
func NetworkFS(path string) string {
	var st unix.Statfs_t
	for p := path; ; p = filepath.Dir(p) {
		err := unix.Statfs(p, &st)
		if err == nil {
			break
		}
		if p == "/" || p == "." {
			return ""
		}
	}
	switch uint32(st.Type) {
	case unix.NFS_SUPER_MAGIC:
		return "NFS"
	case 0x0BD00BD0:
		return "Lustre"
	case 0x47504653:
		return "GPFS"
	case 0x19830326: // BeeGFS (fhgfs)
		return "BeeGFS"
	case unix.SMB_SUPER_MAGIC, 0xFE534D42, 0xFF534D42:
		return "SMB/CIFS"
	case 0x65735546: // FUSE: sshfs and the like
		return "FUSE"
	}
	return ""
}
