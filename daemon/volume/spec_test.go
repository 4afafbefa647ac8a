package volume

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/mount"

	"github.com/lodge-containers/lodge/errdefs"
)

func TestParseVolumeSpec(t *testing.T) {
	for _, tc := range []struct {
		spec string
		want MountPoint
		err  string
	}{
		{spec: "/data", want: MountPoint{Type: mount.TypeVolume, Destination: "/data"}},
		{spec: "data:/d", want: MountPoint{Type: mount.TypeVolume, Name: "data", Destination: "/d"}},
		{spec: "data:/d:ro,nocopy", want: MountPoint{Type: mount.TypeVolume, Name: "data", Destination: "/d", ReadOnly: true, NoCopy: true, Mode: "ro,nocopy"}},
		{spec: "/h:/c:Z", want: MountPoint{Type: mount.TypeBind, Source: "/h", Destination: "/c", Mode: "Z"}},
		{spec: "/h/../h//x/:/c/./d/:rw,rslave", want: MountPoint{Type: mount.TypeBind, Source: "/h/x", Destination: "/c/d", Mode: "rw,rslave", Propagation: "rslave"}},
		{spec: "", err: "empty destination"},
		{spec: "/", err: "can't be '/'"},
		{spec: "data:/..", err: "can't be '/'"},
		{spec: "data:/../../..", err: "can't be '/'"},
		{spec: "data:relative", err: "absolute"},
		{spec: ":/d", err: "empty source"},
		{spec: "a:b:c:d", err: "too many colons"},
		{spec: "../up:/d", err: "absolute"},
		{spec: "./here:/d", err: "absolute"},
		{spec: "a/b:/d", err: "absolute"},
		{spec: "-x:/d", err: "not a valid volume name"},
		{spec: "x:/d", err: "not a valid volume name"},
		{spec: "data:/d:ro,rw", err: "conflicts"},
		{spec: "data:/d:bogus", err: "unknown option"},
		{spec: "data:/d:rshared", err: "propagation is for binds"},
		{spec: "/h:/d:nocopy", err: "nocopy is for volumes"},
		{spec: "data:/d\x00", err: "NUL"},
		{spec: "da\x00ta:/d", err: "NUL"},
		{spec: "data:/d:ro,,z", err: "unknown option"},
		{spec: "data:/d:", want: MountPoint{Type: mount.TypeVolume, Name: "data", Destination: "/d"}},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			got, err := ParseSpec(tc.spec)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Fatalf("ParseSpec(%q) = %+v, %v; want an invalid-argument error with %q", tc.spec, got, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseSpec(%q): %v", tc.spec, err)
			}
			if got.Type != tc.want.Type || got.Name != tc.want.Name || got.Source != tc.want.Source || got.Destination != tc.want.Destination ||
				got.ReadOnly != tc.want.ReadOnly || got.NoCopy != tc.want.NoCopy || got.Mode != tc.want.Mode || got.Propagation != tc.want.Propagation {
				t.Fatalf("ParseSpec(%q) = %+v, want %+v", tc.spec, got, tc.want)
			}
		})
	}
}

func TestParseMount(t *testing.T) {
	for _, tc := range []struct {
		name string
		m    mount.Mount
		err  string
		code error
	}{
		{name: "volume", m: mount.Mount{Type: mount.TypeVolume, Source: "v", Target: "/d"}, err: "not a valid volume name"},
		{name: "anonymous", m: mount.Mount{Type: mount.TypeVolume, Target: "/d"}},
		{name: "bind relative", m: mount.Mount{Type: mount.TypeBind, Source: "rel", Target: "/d"}, err: "must be absolute"},
		{name: "target relative", m: mount.Mount{Type: mount.TypeTmpfs, Target: "d"}, err: "absolute"},
		{name: "target root", m: mount.Mount{Type: mount.TypeTmpfs, Target: "/x/.."}, err: "can't be '/'"},
		{name: "tmpfs source", m: mount.Mount{Type: mount.TypeTmpfs, Source: "/etc", Target: "/t"}, err: "no source"},
		{name: "tmpfs negative", m: mount.Mount{Type: mount.TypeTmpfs, Target: "/t", TmpfsOptions: &mount.TmpfsOptions{SizeBytes: -1}}, err: "negative"},
		{name: "tmpfs mode bits", m: mount.Mount{Type: mount.TypeTmpfs, Target: "/t", TmpfsOptions: &mount.TmpfsOptions{Mode: 1 << 20}}, err: "bits"},
		{name: "tmpfs smuggled option", m: mount.Mount{Type: mount.TypeTmpfs, Target: "/t", TmpfsOptions: &mount.TmpfsOptions{Options: [][]string{{"size=1,uid=0"}}}}, err: "not one lodge"},
		{name: "bind options on a volume", m: mount.Mount{Type: mount.TypeVolume, Target: "/t", BindOptions: &mount.BindOptions{}}, err: "bind options"},
		{name: "subpath anonymous", m: mount.Mount{Type: mount.TypeVolume, Target: "/t", VolumeOptions: &mount.VolumeOptions{Subpath: "x"}}, err: "must not set Subpath when using anonymous volumes"},
		{name: "subpath", m: mount.Mount{Type: mount.TypeVolume, Source: "vol", Target: "/t", VolumeOptions: &mount.VolumeOptions{Subpath: "a/b"}}},
		{name: "subpath up", m: mount.Mount{Type: mount.TypeVolume, Source: "vol", Target: "/t", VolumeOptions: &mount.VolumeOptions{Subpath: "a/../../b"}}, err: "subpath must be a relative path within the volume"},
		{name: "subpath absolute", m: mount.Mount{Type: mount.TypeVolume, Source: "vol", Target: "/t", VolumeOptions: &mount.VolumeOptions{Subpath: "/etc"}}, err: "subpath must be a relative path within the volume"},
		{name: "npipe", m: mount.Mount{Type: mount.TypeNamedPipe, Target: "/t"}, err: "not implemented", code: errdefs.ErrNotImplemented},
		{name: "propagation", m: mount.Mount{Type: mount.TypeBind, Source: "/h", Target: "/t", BindOptions: &mount.BindOptions{Propagation: "sideways"}}, err: "propagation"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseMount(tc.m)
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			code := tc.code
			if code == nil {
				code = errdefs.ErrInvalidArgument
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, code) {
				t.Fatalf("ParseMount: %v; want %q (%v)", err, tc.err, code)
			}
		})
	}
}

// FuzzParseVolumeSpec feeds -v garbage: it must never panic, and what it
// accepts must be clean, absolute and not /, with a valid name or an
// absolute clean source.
func FuzzParseVolumeSpec(f *testing.F) {
	for _, s := range []string{"/data", "v:/d:ro", "/h:/c:Z,rshared", "a:b:c:d", "../../x:/y", "v:/../..", "\x00", "::", "v:/d:nocopy,ro"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		m, err := ParseSpec(spec)
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("%q: unclassed error %v", spec, err)
			}
			return
		}
		if !filepath.IsAbs(m.Destination) || m.Destination == "/" || filepath.Clean(m.Destination) != m.Destination || strings.ContainsRune(m.Destination, 0) {
			t.Fatalf("%q: destination %q", spec, m.Destination)
		}
		switch m.Type {
		case mount.TypeBind:
			if !filepath.IsAbs(m.Source) || filepath.Clean(m.Source) != m.Source {
				t.Fatalf("%q: bind source %q", spec, m.Source)
			}
		case mount.TypeVolume:
			if m.Name != "" && !nameRE.MatchString(m.Name) {
				t.Fatalf("%q: volume name %q", spec, m.Name)
			}
		default:
			t.Fatalf("%q: type %q", spec, m.Type)
		}
	})
}

func TestCheckLocalOptions(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		opts map[string]string
		err  error
	}{
		{opts: nil},
		{opts: map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=1m,uid=1000"}},
		{opts: map[string]string{"type": "tmpfs", "o": "size=1m,context=x"}, err: errdefs.ErrInvalidArgument},
		{opts: map[string]string{"type": "none", "o": "bind", "device": dir}},
		{opts: map[string]string{"type": "none", "o": "bind", "device": "relative"}, err: errdefs.ErrInvalidArgument},
		{opts: map[string]string{"type": "none", "o": "bind", "device": filepath.Join(dir, "missing")}, err: errdefs.ErrInvalidArgument},
		{opts: map[string]string{"type": "none", "device": dir}, err: errdefs.ErrInvalidArgument},
		{opts: map[string]string{"type": "nfs", "o": "addr=1.2.3.4", "device": ":/x"}, err: errdefs.ErrNotImplemented},
		{opts: map[string]string{"bogus": "1"}, err: errdefs.ErrInvalidArgument},
	} {
		err := checkLocalOptions(tc.opts)
		if tc.err == nil && err != nil || tc.err != nil && !errors.Is(err, tc.err) {
			t.Errorf("checkLocalOptions(%v) = %v, want %v", tc.opts, err, tc.err)
		}
	}
}

// TestParseMountRecursiveReadOnly: bind-recursive's read-only choices need
// a read-only bind and exclude each other, with Docker's messages.
func TestParseMountRecursiveReadOnly(t *testing.T) {
	bind := func(ro bool, o mount.BindOptions) mount.Mount {
		return mount.Mount{Type: mount.TypeBind, Source: "/src", Target: "/dst", ReadOnly: ro, BindOptions: &o}
	}
	for _, tc := range []struct {
		m          mount.Mount
		nonRec, rf bool
		err        string
	}{
		{m: bind(true, mount.BindOptions{})},
		{m: bind(true, mount.BindOptions{ReadOnlyNonRecursive: true}), nonRec: true},
		{m: bind(true, mount.BindOptions{ReadOnlyForceRecursive: true}), rf: true},
		{m: bind(false, mount.BindOptions{ReadOnlyNonRecursive: true}), err: "mount options conflict: !ReadOnly && BindOptions.ReadOnlyNonRecursive"},
		{m: bind(false, mount.BindOptions{ReadOnlyForceRecursive: true}), err: "mount options conflict: !ReadOnly && BindOptions.ReadOnlyForceRecursive"},
		{m: bind(true, mount.BindOptions{ReadOnlyNonRecursive: true, ReadOnlyForceRecursive: true}), err: "mount options conflict: ReadOnlyNonRecursive && BindOptions.ReadOnlyForceRecursive"},
	} {
		mp, err := ParseMount(tc.m)
		if tc.err != "" {
			if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%+v: %v, want %q", tc.m.BindOptions, err, tc.err)
			}
			continue
		}
		if err != nil || mp.ReadOnlyNonRecursive != tc.nonRec || mp.ReadOnlyForceRecursive != tc.rf {
			t.Errorf("%+v: %+v %v", tc.m.BindOptions, mp, err)
		}
	}
}

// TestVolumeSubpath: a subpath resolves inside the volume, follows
// symlinks that stay in it, and refuses one that leads out or is missing.
func TestVolumeSubpath(t *testing.T) {
	vol := t.TempDir()
	outside := t.TempDir()
	os.MkdirAll(filepath.Join(vol, "a", "b"), 0o755)
	os.Symlink("a/b", filepath.Join(vol, "in"))
	os.Symlink(outside, filepath.Join(vol, "out"))
	os.Symlink("../../..", filepath.Join(vol, "a", "up"))
	for _, tc := range []struct {
		sub, want, err string
		code           error
	}{
		{sub: "a/b", want: filepath.Join(vol, "a", "b")},
		{sub: "in", want: filepath.Join(vol, "a", "b")},
		{sub: "out", err: "escapes the base directory", code: errdefs.ErrInvalidArgument},
		{sub: "a/up", err: "escapes the base directory", code: errdefs.ErrInvalidArgument},
		{sub: "missing", err: "cannot access path", code: errdefs.ErrNotFound},
		{sub: "../x", err: "relative path within the volume", code: errdefs.ErrInvalidArgument},
	} {
		got, err := Subpath(vol, tc.sub)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, tc.code) {
				t.Errorf("%s: %q %v, want %q", tc.sub, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: %q %v, want %q", tc.sub, got, err, tc.want)
		}
	}
}
