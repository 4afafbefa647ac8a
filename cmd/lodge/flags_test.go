package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/image"
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

func TestImageRowsAndFormat(t *testing.T) {
	rows := imageRows(image.Summary{ID: "sha256:0123456789abcdef", RepoTags: []string{"127.0.0.1:5000/a/b:1", "c"}, Size: 2_010_000})
	if len(rows) != 2 || rows[0].Repository != "127.0.0.1:5000/a/b" || rows[0].Tag != "1" || rows[1].Repository != "c" || rows[0].Size != "2.01MB" {
		t.Errorf("rows %+v", rows)
	}
	if r := imageRows(image.Summary{ID: "sha256:0123456789abcdef"}); r[0].Repository != "<none>" {
		t.Errorf("dangling %+v", r)
	}
	var buf bytes.Buffer
	if err := printRows(&buf, "table {{.Repository}}\t{{.Tag}}", rows); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(buf.String(), "REPOSITORY") || !strings.Contains(buf.String(), "127.0.0.1:5000/a/b   1") {
		t.Errorf("table:\n%s", buf.String())
	}
	if err := printRows(&buf, "{{.Nope", rows); err == nil {
		t.Error("a broken template was accepted")
	}
}
