package image

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	digest "github.com/opencontainers/go-digest"
)

func TestParseName(t *testing.T) {
	for in, want := range map[string]string{
		"busybox":                     "docker.io/library/busybox:latest",
		"team/app:1":                  "docker.io/team/app:1",
		"127.0.0.1:5000/team/app:1.0": "127.0.0.1:5000/team/app:1.0",
		"localhost/x":                 "localhost/x:latest",
	} {
		n, err := ParseName(in)
		if err != nil || n.String() != want {
			t.Errorf("ParseName(%q) = %v, %v; want %s", in, n, err, want)
		}
	}
	for _, bad := range []string{"UPPER", "a b", ""} {
		if _, err := ParseName(bad); err == nil {
			t.Errorf("ParseName(%q) accepted", bad)
		}
	}
}

func TestChainID(t *testing.T) {
	a := digest.FromString("a")
	b := digest.FromString("b")
	if chainID("", a) != a {
		t.Error("bottom layer's chain ID is its diff ID")
	}
	if got, want := chainID(a, b), digest.FromString(a.String()+" "+b.String()); got != want {
		t.Errorf("chainID = %s, want %s", got, want)
	}
}

func TestApplyChange(t *testing.T) {
	var c dockerspec.DockerOCIImageConfig
	for _, ch := range []string{`CMD ["/bin/echo","hi"]`, "ENTRYPOINT /init", "ENV A=1", "WORKDIR /w", "USER 1000", "EXPOSE 80 53/udp", "LABEL k=v"} {
		if err := applyChange(&c, ch); err != nil {
			t.Fatalf("%s: %v", ch, err)
		}
	}
	if strings.Join(c.Cmd, " ") != "/bin/echo hi" || strings.Join(c.Entrypoint, " ") != "/bin/sh -c /init" ||
		c.Env[0] != "A=1" || c.WorkingDir != "/w" || c.User != "1000" || c.Labels["k"] != "v" {
		t.Errorf("config %+v", c)
	}
	if _, ok := c.ExposedPorts["80/tcp"]; !ok {
		t.Errorf("ports %v", c.ExposedPorts)
	}
	if err := applyChange(&c, "RUN rm -rf /"); err == nil {
		t.Error("RUN accepted as a change")
	}
}

// A docker-archive may name blobs through symlinks (docker save before
// 25 linked repeated layers); the spool follows them.
func TestSpoolFollowsLinks(t *testing.T) { onDrivers(t, testSpoolFollowsLinks) }

func testSpoolFollowsLinks(t *testing.T, s *Service) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "a/layer.tar", Typeflag: tar.TypeReg, Size: 5, Mode: 0o644})
	tw.Write([]byte("hello"))
	tw.WriteHeader(&tar.Header{Name: "b/layer.tar", Typeflag: tar.TypeSymlink, Linkname: "../a/layer.tar"})
	tw.Close()
	st, err := NewArchives(s).spool(context.Background(), &buf)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r, err := st.open("b/layer.tar")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r)
	if string(b) != "hello" {
		t.Errorf("read %q", b)
	}
	if _, err := st.open("c"); err == nil {
		t.Error("missing file opened")
	}
	if _, err := NewArchives(s).spool(context.Background(), strings.NewReader("not a tar at all, not at all, definitely not")); err == nil {
		t.Error("garbage spooled as a tar")
	}
}
