// Command bench measures lodge beside Docker rootless and Podman rootless,
// interleaved in one run, and prints a table (figure, lodge, docker,
// podman, ratio) and writes bench/results.json. Run it through `make
// bench`; as root it runs every engine as the unprivileged test user.
//
// A figure that cannot be measured says why instead of printing a number.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// result is one figure on every engine, as results.json stores it.
type result struct {
	Figure string   `json:"figure"`
	Unit   string   `json:"unit"`
	Lodge  *float64 `json:"lodge"`
	Docker *float64 `json:"docker"`
	Podman *float64 `json:"podman"`
	// Ratio is lodge over the faster anchor (below 1 means lodge is faster
	// or smaller).
	Ratio *float64          `json:"ratio"`
	P99   map[string]string `json:"p99,omitempty"`
	Notes []string          `json:"notes,omitempty"`
}

func main() {
	group := flag.String("group", os.Getenv("BENCH"), "run only this group (kernel, daemon, run, cli, api, ps, memory, images, net, build)")
	out := flag.String("out", "bench/results.json", "where to write the results")
	reps := flag.Int("n", 10, "repetitions per figure")
	loop := flag.String("api-loop", "", "internal: run an API loop (cycle, concurrent, create, start, clear) as the benchmark user")
	host := flag.String("api-host", "", "internal: the engine for -api-loop")
	flag.Parse()
	if *loop != "" {
		if err := apiLoop(*host, *loop, *reps); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}

	env, err := newEnv()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	defer env.cleanup()

	var results []result
	for _, g := range groups {
		if *group != "" && g.name != *group {
			continue
		}
		fmt.Fprintf(os.Stderr, "bench: %s\n", g.name)
		results = append(results, g.run(env, *reps)...)
	}
	printTable(results)
	if err := writeResults(*out, results); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type benchGroup struct {
	name string
	run  func(e *env, reps int) []result
}

var groups = []benchGroup{
	{"kernel", kernelFloor},
	{"daemon", daemonStart},
	{"run", runTrue},
	{"cli", nativeRun},
	{"api", apiCycle},
	{"ps", psMany},
	{"memory", idleMemory},
	{"images", pullAndLoad},
	{"net", publishedPort},
	{"build", buildBench},
}

// stats is a series of durations or sizes.
type stats []float64

func (s stats) median() float64 { return s.pct(50) }

func (s stats) pct(p float64) float64 {
	if len(s) == 0 {
		return 0
	}
	c := append(stats(nil), s...)
	sort.Float64s(c)
	i := int(float64(len(c)-1) * p / 100)
	return c[i]
}

func ptr(f float64) *float64 { return &f }

// finish fills the ratio: lodge over the faster (smaller) anchor.
func finish(r result) result {
	if r.Lodge == nil {
		return r
	}
	best := 0.0
	for _, a := range []*float64{r.Docker, r.Podman} {
		if a != nil && *a > 0 && (best == 0 || *a < best) {
			best = *a
		}
	}
	if best > 0 {
		r.Ratio = ptr(*r.Lodge / best)
	}
	return r
}

func printTable(rs []result) {
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "FIGURE\tLODGE\tDOCKER ROOTLESS\tPODMAN\tLODGE/BEST ANCHOR")
	f := func(v *float64, unit string) string {
		if v == nil {
			return "-"
		}
		return fmt.Sprintf("%.1f %s", *v, unit)
	}
	for _, r := range rs {
		ratio := "-"
		if r.Ratio != nil {
			ratio = fmt.Sprintf("%.2fx", *r.Ratio)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", r.Figure, f(r.Lodge, r.Unit), f(r.Docker, r.Unit), f(r.Podman, r.Unit), ratio)
	}
	w.Flush()
	for _, r := range rs {
		for _, n := range r.Notes {
			fmt.Printf("  %s: %s\n", r.Figure, n)
		}
	}
}

func writeResults(path string, rs []result) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	commit, _ := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	host, _ := os.Hostname()
	doc := map[string]any{
		"time":    time.Now().UTC().Format(time.RFC3339),
		"commit":  strings.TrimSpace(string(commit)),
		"machine": map[string]any{"host": host, "cpus": runtime.NumCPU(), "kernel": kernel()},
		"results": rs,
	}
	b, _ := json.MarshalIndent(doc, "", "  ")
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func kernel() string {
	b, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return strings.TrimSpace(string(b))
}
