package volume

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/moby/moby/api/types/mount"

	"github.com/lodge-containers/lodge/errdefs"
)

// MountPoint is one of a container's mounts as it was settled at create:
// a -v, a --mount or an anonymous volume for a VOLUME, with the volume's
// name fixed (anonymous ones get theirs then). Container records keep
// them, so a start mounts the same volumes as the one before.
type MountPoint struct {
	Type        mount.Type // bind, volume or tmpfs
	Name        string     `json:",omitempty"` // the volume
	Source      string     `json:",omitempty"` // a bind's host path
	Destination string
	ReadOnly    bool   `json:",omitempty"`
	Mode        string `json:",omitempty"` // -v's options as the user gave them
	Propagation string `json:",omitempty"`
	NoCopy      bool   `json:",omitempty"` // no copy-up into a new volume
	// Subpath is the directory of the volume mounted instead of its root
	// (--mount volume-subpath), relative and inside it.
	Subpath string `json:",omitempty"`
	// A read-only bind is read-only with all its submounts (the kernel's
	// mount_setattr, 5.12), as Docker has it from API 1.44, unless
	// ReadOnlyNonRecursive (older clients, bind-recursive=writable);
	// ReadOnlyForceRecursive refuses to start where that cannot be done.
	ReadOnlyNonRecursive   bool `json:",omitempty"`
	ReadOnlyForceRecursive bool `json:",omitempty"`
	// Options are a tmpfs's mount options (size=, mode=).
	Options []string `json:",omitempty"`
	// Volume is how to create the volume when it does not exist yet.
	Volume *Options `json:"-"`
}

// ParseSpec reads one -v (HostConfig.Binds) entry: [src:]dst[:opts],
// where src is an absolute host path (a bind) or a volume name, and no src
// means an anonymous volume.
func ParseSpec(spec string) (MountPoint, error) {
	bad := func(why string) (MountPoint, error) {
		return MountPoint{}, errdefs.InvalidArgumentf("invalid volume specification: '%s': %s", spec, why)
	}
	if strings.ContainsRune(spec, 0) {
		return bad("it contains a NUL byte")
	}
	parts := strings.Split(spec, ":")
	var src, dst, mode string
	switch len(parts) {
	case 1:
		dst = parts[0]
	case 2:
		src, dst = parts[0], parts[1]
	case 3:
		src, dst, mode = parts[0], parts[1], parts[2]
	default:
		return bad("too many colons")
	}
	if len(parts) > 1 && src == "" {
		return bad("empty source")
	}
	m := MountPoint{Destination: dst, Mode: mode}
	switch {
	case src == "":
		m.Type = mount.TypeVolume
	case strings.HasPrefix(src, "/"):
		m.Type, m.Source = mount.TypeBind, filepath.Clean(src)
	case strings.HasPrefix(src, ".") || strings.Contains(src, "/"):
		return bad("a bind source must be an absolute path")
	default:
		if !nameRE.MatchString(src) {
			return bad(fmt.Sprintf("%q is not a valid volume name, only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed; a host directory must be an absolute path", src))
		}
		m.Type, m.Name = mount.TypeVolume, src
	}
	if err := CheckDestination(&m.Destination); err != nil {
		return bad(err.Error())
	}
	seen := map[string]bool{}
	for _, o := range strings.Split(mode, ",") {
		if o == "" && mode == "" {
			continue
		}
		kind := o
		switch o {
		case "ro", "rw":
			kind = "rw"
			m.ReadOnly = o == "ro"
		case "z", "Z":
			// SELinux relabelling: there is none in a user namespace.
			kind = "z"
		case "nocopy":
			if m.Type != mount.TypeVolume {
				return bad("nocopy is for volumes")
			}
			m.NoCopy = true
		case "shared", "rshared", "slave", "rslave", "private", "rprivate":
			if m.Type != mount.TypeBind {
				return bad("propagation is for binds")
			}
			kind = "propagation"
			m.Propagation = o
		default:
			return bad(fmt.Sprintf("unknown option %q", o))
		}
		if seen[kind] {
			return bad(fmt.Sprintf("option %q conflicts with another", o))
		}
		seen[kind] = true
	}
	return m, nil
}

// CheckDestination requires an absolute path other than / and cleans it.
func CheckDestination(dst *string) error {
	d := *dst
	if d == "" {
		return fmt.Errorf("empty destination")
	}
	if strings.ContainsRune(d, 0) {
		return fmt.Errorf("the destination contains a NUL byte")
	}
	if !strings.HasPrefix(d, "/") {
		return fmt.Errorf("the destination %q must be an absolute path", d)
	}
	d = filepath.Clean(d)
	if d == "/" {
		return fmt.Errorf("the destination can't be '/'")
	}
	*dst = d
	return nil
}

// ParseMount reads one --mount (HostConfig.Mounts).
func ParseMount(m mount.Mount) (MountPoint, error) {
	bad := func(format string, a ...any) (MountPoint, error) {
		return MountPoint{}, errdefs.InvalidArgumentf("invalid mount config for type %q: "+format, append([]any{m.Type}, a...)...)
	}
	mp := MountPoint{Type: m.Type, Destination: m.Target, ReadOnly: m.ReadOnly}
	if err := CheckDestination(&mp.Destination); err != nil {
		return bad("%v", err)
	}
	if strings.ContainsRune(m.Source, 0) {
		return bad("the source contains a NUL byte")
	}
	if m.BindOptions != nil && m.Type != mount.TypeBind {
		return bad("bind options are for binds")
	}
	if m.VolumeOptions != nil && m.Type != mount.TypeVolume {
		return bad("volume options are for volumes")
	}
	if m.TmpfsOptions != nil && m.Type != mount.TypeTmpfs {
		return bad("tmpfs options are for tmpfs")
	}
	switch m.Type {
	case mount.TypeBind:
		if !filepath.IsAbs(m.Source) {
			return bad("invalid mount path: '%s' mount path must be absolute", m.Source)
		}
		mp.Source = filepath.Clean(m.Source)
		if o := m.BindOptions; o != nil {
			if o.NonRecursive {
				return MountPoint{}, errdefs.NotImplementedf("bind-recursive=disabled is not implemented")
			}
			switch {
			case !m.ReadOnly && o.ReadOnlyNonRecursive:
				return bad("mount options conflict: !ReadOnly && BindOptions.ReadOnlyNonRecursive")
			case !m.ReadOnly && o.ReadOnlyForceRecursive:
				return bad("mount options conflict: !ReadOnly && BindOptions.ReadOnlyForceRecursive")
			case o.ReadOnlyNonRecursive && o.ReadOnlyForceRecursive:
				return bad("mount options conflict: ReadOnlyNonRecursive && BindOptions.ReadOnlyForceRecursive")
			}
			mp.ReadOnlyNonRecursive, mp.ReadOnlyForceRecursive = o.ReadOnlyNonRecursive, o.ReadOnlyForceRecursive
			switch o.Propagation {
			case "", mount.PropagationPrivate, mount.PropagationRPrivate, mount.PropagationShared, mount.PropagationRShared, mount.PropagationSlave, mount.PropagationRSlave:
				mp.Propagation = string(o.Propagation)
			default:
				return bad("unknown propagation %q", o.Propagation)
			}
		}
	case mount.TypeVolume:
		if m.Source != "" && !nameRE.MatchString(m.Source) {
			return bad("%q is not a valid volume name", m.Source)
		}
		mp.Name = m.Source
		if o := m.VolumeOptions; o != nil {
			if o.Subpath != "" {
				if m.Source == "" {
					return bad("must not set Subpath when using anonymous volumes")
				}
				if !filepath.IsLocal(o.Subpath) {
					return bad("subpath must be a relative path within the volume")
				}
				mp.Subpath = filepath.Clean(o.Subpath)
			}
			mp.NoCopy = o.NoCopy
			vc := &Options{Labels: o.Labels}
			if d := o.DriverConfig; d != nil {
				vc.Driver, vc.DriverOpts = d.Name, d.Options
			}
			mp.Volume = vc
		}
	case mount.TypeTmpfs:
		if m.Source != "" {
			return bad("a tmpfs has no source")
		}
		if o := m.TmpfsOptions; o != nil {
			if o.SizeBytes < 0 {
				return bad("negative tmpfs-size")
			}
			if o.SizeBytes > 0 {
				mp.Options = append(mp.Options, fmt.Sprintf("size=%d", o.SizeBytes))
			}
			if o.Mode&^0o7777 != 0 {
				return bad("tmpfs-mode %o has bits besides permissions", o.Mode)
			}
			if o.Mode != 0 {
				mp.Options = append(mp.Options, fmt.Sprintf("mode=%o", o.Mode))
			}
			for _, kv := range o.Options {
				if len(kv) == 0 || len(kv) > 2 {
					return bad("bad tmpfs option %q", kv)
				}
				switch kv[0] {
				case "exec", "noexec", "nosuid", "suid", "nodev", "dev":
					mp.Options = append(mp.Options, kv[0])
				default:
					return bad("tmpfs option %q is not one lodge passes on", kv[0])
				}
			}
		}
	default:
		return MountPoint{}, errdefs.NotImplementedf("mount type %q is not implemented", m.Type)
	}
	return mp, nil
}
