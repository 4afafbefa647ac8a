package proc

import (
	"os"
	"strconv"
	"testing"
)

func TestCodeMappings(t *testing.T) {
	maps := []byte(`00400000-00403000 r--p 00000000 fe:00 1 /opt/lodge/bin/lodged
Rss:                  12 kB
Anonymous:             0 kB
00403000-01032000 r-xp 00003000 fe:00 1 /opt/lodge/bin/lodged
Rss:               10236 kB
Anonymous:             0 kB
VmFlags: rd ex mr mw me
01032000-01db4000 r--p 00c32000 fe:00 1 /opt/lodge/bin/lodged
Rss:               10824 kB
Anonymous:             0 kB
01db4000-01db5000 r--p 019b3000 fe:00 1 /opt/lodge/bin/lodged
Rss:                   4 kB
Anonymous:             4 kB
01db5000-01de1000 rw-p 019b4000 fe:00 1 /opt/lodge/bin/lodged
Anonymous:             0 kB
01de1000-01e62000 rw-p 00000000 00:00 0
Anonymous:             0 kB
7fbe5ccec000-7fbe5ce42000 r-xp 00026000 fe:00 2 /usr/lib/x86_64-linux-gnu/libc.so.6
Anonymous:             0 kB
7fbe5ce42000-7fbe5ce43000 r-xp 00026000 fe:00 3 /opt/lodge/bin/lodged copy
Anonymous:             0 kB
`)
	got := codeMappings(maps, "/opt/lodge/bin/lodged")
	want := [][2]uintptr{{0x400000, 0x403000}, {0x403000, 0x1032000}, {0x1032000, 0x1db4000}}
	if len(got) != len(want) {
		t.Fatalf("codeMappings = %x, want %x", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("codeMappings = %x, want %x", got, want)
		}
	}
}

// TestReleaseCode unmaps this test binary's code and carries on running:
// the pages come back on the next touch.
func TestReleaseCode(t *testing.T) {
	before := rssFile(t)
	n, err := ReleaseCode()
	if err != nil {
		t.Fatalf("ReleaseCode: %v", err)
	}
	if n == 0 {
		t.Fatal("ReleaseCode released nothing: no mapping of the executable found")
	}
	if after := rssFile(t); after >= before {
		t.Errorf("RssFile %d kB before, %d kB after: nothing was unmapped", before, after)
	}
}

func rssFile(t *testing.T) int {
	t.Helper()
	v := StatusField(os.Getpid(), "RssFile")
	kb, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("RssFile %q: %v", v, err)
	}
	return kb
}
