package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/network"
)

func TestParseRestart(t *testing.T) {
	for in, ok := range map[string]bool{"no": true, "always": true, "unless-stopped": true, "on-failure": true, "on-failure:3": true,
		"always:2": false, "on-failure:x": false, "sometimes": false} {
		rp, err := parseRestart(in)
		if (err == nil) != ok {
			t.Errorf("parseRestart(%q) = %+v, %v", in, rp, err)
		}
	}
	if rp, _ := parseRestart("on-failure:3"); rp.MaximumRetryCount != 3 {
		t.Errorf("count: %+v", rp)
	}
}

func TestReadEnvFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "env")
	os.WriteFile(p, []byte("# comment\nA=1\n\nB=two words\nLODGE_TEST_FROM_CALLER\nLODGE_TEST_UNSET\n"), 0o600)
	t.Setenv("LODGE_TEST_FROM_CALLER", "x")
	got, err := readEnvFile(p)
	if err != nil || strings.Join(got, "|") != "A=1|B=two words|LODGE_TEST_FROM_CALLER=x" {
		t.Errorf("readEnvFile = %q, %v", got, err)
	}
}

func TestListFormats(t *testing.T) {
	var buf bytes.Buffer
	imgs := []image.Summary{{ID: "sha256:0123456789abcdef0123", RepoTags: []string{"127.0.0.1:5000/a/b:1"}, Size: 2_010_000}}
	if err := writeImages(&buf, imgs, "table", false, false, false); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(buf.String(), "REPOSITORY") || !strings.Contains(buf.String(), "127.0.0.1:5000/a/b   1         0123456789ab") {
		t.Errorf("images table:\n%s", buf.String())
	}
	buf.Reset()
	nets := []network.Summary{{Network: network.Network{ID: "f00dfeedf00dfeedf00d", Name: "net10", Driver: "bridge", Scope: "local"}}, {Network: network.Network{ID: "abcabcabcabcabc", Name: "net2", Driver: "bridge", Scope: "local"}}}
	if err := writeNetworks(&buf, nets, "{{.Name}} {{.ID}}", false, false); err != nil {
		t.Fatal(err)
	}
	if buf.String() != "net2 abcabcabcabc\nnet10 f00dfeedf00d\n" {
		t.Errorf("networks, natural order and truncated ids:\n%s", buf.String())
	}
	if err := writeNetworks(&buf, nets, "{{.Nope", false, false); err == nil {
		t.Error("a broken template was accepted")
	}
}

func TestNaturalCompare(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		less bool
	}{{"vol2", "vol10", true}, {"vol10", "vol2", false}, {"a", "b", true}, {"a1b", "a01b", false}, {"abc", "abcd", true}, {"x9", "x9", false}} {
		if got := naturalCompare(tc.a, tc.b) < 0; got != tc.less {
			t.Errorf("naturalCompare(%q, %q) < 0 = %v", tc.a, tc.b, got)
		}
	}
}
