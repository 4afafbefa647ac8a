package image

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"testing"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
)

// Names come from users and registries: parsing must never panic, and a
// name that parses must print as something that parses to the same.
func FuzzParseName(f *testing.F) {
	for _, s := range []string{"busybox", "127.0.0.1:5000/team/app:1.0", "a/b@sha256:" + string(bytes.Repeat([]byte("0"), 64)), "UPPER", "x:", "::", "localhost/a/b/c:tag"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseName(s)
		if err != nil {
			return
		}
		again, err := ParseName(n.String())
		if err != nil || again.String() != n.String() {
			t.Errorf("%q parsed to %q, which parses to %v, %v", s, n.String(), again, err)
		}
	})
}

// --change instructions come from users: any text gives a config or an
// error, never a panic.
func FuzzApplyChange(f *testing.F) {
	for _, s := range []string{`CMD ["/bin/echo","hi"]`, "ENV A=1 B=2", "EXPOSE 80/udp", "LABEL a=b", "USER", "ENV", `CMD ["unterminated`, "EXPOSE 99999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var c dockerspec.DockerOCIImageConfig
		applyChange(&c, s)
	})
}

// An archive for docker load comes from anywhere: whatever the bytes, Load
// answers with an error or images, never a panic, and the images already
// there stay.
func FuzzLoad(f *testing.F) {
	var good bytes.Buffer
	tw := tar.NewWriter(&good)
	manifest, _ := json.Marshal([]archiveEntry{{Config: "c.json", RepoTags: []string{"x:1"}, Layers: []string{"l.tar"}}})
	for name, body := range map[string][]byte{"manifest.json": manifest, "c.json": []byte(`{"rootfs":{"type":"layers","diff_ids":["sha256:00"]}}`), "l.tar": make([]byte, 1024)} {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
		tw.Write(body)
	}
	tw.Close()
	f.Add(good.Bytes())
	f.Add([]byte("not a tar"))
	f.Add([]byte{})
	s := testServiceF(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		before := s.Count()
		NewArchives(s).Load(context.Background(), bytes.NewReader(b), nil)
		if s.Count() < before {
			t.Errorf("loading %d bytes lost images: %d before, %d after", len(b), before, s.Count())
		}
	})
}
