package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// pinnedNetns lists what is pinned under lodged's RunDir/netns: the names
// there, and how many of them lodged's mount namespace has mounted.
func (s *session) pinnedNetns() (names []string, mounts int) {
	s.t.Helper()
	dir := filepath.Join(s.runDir, "state", "netns")
	ents, _ := os.ReadDir(dir) // none yet is an empty list
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", s.pid())); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
				mounts++
			}
		}
	}
	return names, mounts
}

// TestSpareNamespaces: the namespaces lodged keeps linked to the default
// bridge ahead of starts give a container the address and MAC inspect
// shows; at rest exactly the two spare slots are pinned, after runs and
// after a kill -9 of lodged mid-use alike (the next lodged unpins what the
// killed one left: its spares, a running container's slot), and a stopped
// lodged leaves nothing pinned.
func TestSpareNamespaces(t *testing.T) {
	s, docker := containerSession(t)
	atRest := func(when string) {
		t.Helper()
		var names []string
		var mounts int
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			if names, mounts = s.pinnedNetns(); strings.Join(names, ",") == "spare-0,spare-1" && mounts == 2 {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Errorf("%s: pinned under netns %v (%d mounts), want the spares spare-0 and spare-1 only", when, names, mounts)
	}
	for i := 0; i < 3; i++ {
		s.must(docker, "run", "--rm", "busybox", "true")
	}
	atRest("after three runs")

	s.must(docker, "run", "-d", "--name", "one", "busybox", "sleep", "600")
	ip := s.ipOf(docker, "one", "bridge")
	mac := strings.TrimSpace(s.must(docker, "inspect", "-f", "{{.NetworkSettings.Networks.bridge.MacAddress}}", "one").stdout)
	inside := s.must(docker, "exec", "one", "busybox", "ip", "-o", "addr", "show", "eth0").stdout
	if !strings.Contains(inside, " "+ip+"/16 ") {
		t.Errorf("eth0 in the container: %q, want inspect's %s/16", inside, ip)
	}
	if got := strings.TrimSpace(s.must(docker, "exec", "one", "busybox", "cat", "/sys/class/net/eth0/address").stdout); got != mac || mac == "" {
		t.Errorf("eth0's MAC %q, inspect says %q", got, mac)
	}
	s.must(docker, "run", "--rm", "busybox", "busybox", "ping", "-c", "1", "-W", "5", ip)

	// Killed while a container holds a namespace that was a spare.
	s.killDaemon()
	s.start()
	s.must(docker, "run", "--rm", "busybox", "busybox", "ping", "-c", "1", "-W", "5", ip)
	s.must(docker, "rm", "-f", "one")
	s.must(docker, "run", "--rm", "busybox", "true")
	atRest("after a kill -9 and a restart")
	// The address the killed lodged's container had is given again, and
	// works: no namespace left holding it answers in its place.
	s.must(docker, "run", "-d", "--name", "two", "busybox", "busybox", "httpd", "-f", "-p", "8000", "-h", "/etc")
	if got := s.ipOf(docker, "two", "bridge"); got != ip {
		t.Logf("the new container has %s, not the freed %s", got, ip)
	}
	ip2 := s.ipOf(docker, "two", "bridge")
	want := strings.TrimSpace(s.must(docker, "inspect", "-f", "{{.Config.Hostname}}", "two").stdout)
	if out := strings.TrimSpace(s.must(docker, "run", "--rm", "busybox", "busybox", "wget", "-qO-", "http://"+ip2+":8000/hostname").stdout); out != want {
		t.Errorf("over the bridge to %s: %q, want %q", ip2, out, want)
	}
	s.must(docker, "rm", "-f", "two")

	dir := filepath.Join(s.runDir, "state", "netns")
	s.must("lodge", "daemon", "stop")
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("a stopped lodged left under %s: %v", dir, ents)
	}
}
