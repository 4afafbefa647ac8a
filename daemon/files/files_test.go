package files

import "testing"

func TestMountFor(t *testing.T) {
	mounts := []Mount{
		{Source: "/host/w", Destination: "/w"},
		{Source: "/host/deep", Destination: "/w/a/b"},
	}
	for _, tc := range []struct {
		p, src, inner string
		ok            bool
	}{
		{"/w", "/host/w", "/", true},
		{"/w/", "/host/w", "/", true},
		{"/w/.", "/host/w", "/.", true},
		{"/w/x/", "/host/w", "/x/", true},
		{"/w/a/b/c", "/host/deep", "/c", true},
		{"/w/a/../a/b/c", "/host/deep", "/c", true},
		{"/wx", "", "", false},
		{"/t/x", "", "", false},
		{"/", "", "", false},
	} {
		src, inner, ok := mountFor(mounts, tc.p)
		if src != tc.src || inner != tc.inner || ok != tc.ok {
			t.Errorf("mountFor(%q) = %q %q %v, want %q %q %v", tc.p, src, inner, ok, tc.src, tc.inner, tc.ok)
		}
	}
}
