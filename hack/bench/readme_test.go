package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadmeFromResults writes two group runs to a results file, the
// second replacing only its group, and the README section from it.
func TestReadmeFromResults(t *testing.T) {
	dir := t.TempDir()
	res := filepath.Join(dir, "results.json")
	first := []result{
		{Group: "run", Figure: "docker run --rm busybox true", Unit: "ms"},
		{Group: "net", Figure: "published port", Unit: "Gbit/s", HigherIsBetter: true},
	}
	setSeries(&first[0], map[string]stats{"lodge": {40, 50, 60, 300}, "docker": {250, 260}, "podman": {500}})
	first[0] = finish(first[0])
	setSeries(&first[1], map[string]stats{"lodge": {9, 17, 6}, "docker": {12}})
	first[1] = finish(first[1])
	t.Setenv("BENCH_CMD", "bash hack/bench.sh -n 6")
	if err := writeResults(res, first, map[string]run{"run": {Command: command(), Commit: "aaa"}, "net": {Command: command(), Commit: "aaa"}}); err != nil {
		t.Fatal(err)
	}
	again := []result{{Group: "net", Figure: "published port", Unit: "Gbit/s", HigherIsBetter: true}}
	setSeries(&again[0], map[string]stats{"lodge": {20}, "docker": {10}})
	again[0] = finish(again[0])
	t.Setenv("BENCH_CMD", "BENCH=net bash hack/bench.sh -n 3")
	if err := writeResults(res, again, map[string]run{"net": {Command: command(), Commit: "bbb", Time: "z"}}); err != nil {
		t.Fatal(err)
	}

	readme := filepath.Join(dir, "README.md")
	os.WriteFile(readme, []byte("before\n"+readmeBegin+"\nold table\n"+readmeEnd+"\nafter\n"), 0o644)
	if err := writeReadme(readme, res); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(readme)
	got := string(b)
	for _, want := range []string{
		"before\n", "\nafter\n",
		"| docker run --rm busybox true | 55.0 ms (p99 300) | 255 ms (p99 260) | 500 ms | 0.22x |",
		"| published port | 20.0 Gbit/s | 10.0 Gbit/s | - | 2.00x (higher is better) |",
		"`bash hack/bench.sh -n 6` at commit aaa",
		"`BENCH=net bash hack/bench.sh -n 3` at commit bbb",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("README lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "old table") {
		t.Errorf("the old section stayed:\n%s", got)
	}
}

// TestP99IsTheBadSide: the slow tail of a time, the low tail of a rate.
func TestP99IsTheBadSide(t *testing.T) {
	r := result{Unit: "Gbit/s", HigherIsBetter: true}
	setSeries(&r, map[string]stats{"lodge": {6, 17, 16, 15}})
	if r.P99["lodge"] != 6 {
		t.Errorf("rate p99 = %v, want the lowest, 6", r.P99["lodge"])
	}
	r = result{Unit: "ms"}
	setSeries(&r, map[string]stats{"lodge": {6, 17, 16, 15}})
	if r.P99["lodge"] != 17 {
		t.Errorf("time p99 = %v, want the highest, 17", r.P99["lodge"])
	}
}
