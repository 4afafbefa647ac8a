// Command bench measures lodge beside Docker rootless and Podman rootless,
// interleaved in one run, and prints a table (figure, lodge, docker,
// podman, ratio; each a median with its p99) and writes bench/results.json.
// Run it through `make bench`; as root it runs every engine as the
// unprivileged test user. `go run ./hack/bench -readme` rewrites the
// README's table from bench/results.json.
//
// A figure that cannot be measured says why instead of printing a number.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

// result is one figure on every engine, as results.json stores it. Lodge,
// Docker and Podman are medians.
type result struct {
	Group  string   `json:"group"`
	Figure string   `json:"figure"`
	Unit   string   `json:"unit"`
	Lodge  *float64 `json:"lodge"`
	Docker *float64 `json:"docker"`
	Podman *float64 `json:"podman"`
	// Containerd is rootless containerd's CRI, the anchor of the cri
	// group (Docker and Podman serve no CRI).
	Containerd *float64 `json:"containerd,omitempty"`
	// Ratio is lodge over the better anchor (below 1 means lodge is
	// faster or smaller; for a rate, above 1 means lodge is faster).
	Ratio *float64 `json:"ratio"`
	// HigherIsBetter marks a rate (Gbit/s, runs/s).
	HigherIsBetter bool `json:"higher_is_better,omitempty"`
	// P99 is each engine's 99th percentile on the bad side: the slowest
	// 1% of a time or size, the lowest 1% of a rate.
	P99 map[string]float64 `json:"p99,omitempty"`
	// Samples is how many measurements each median was taken from.
	Samples map[string]int `json:"samples,omitempty"`
	Notes   []string       `json:"notes,omitempty"`
}

// run says how a group's figures were made.
type run struct {
	Command string `json:"command"`
	Time    string `json:"time"`
	Commit  string `json:"commit"`
	// Load is the machine's 1-minute load average when the group started
	// and when it ended: other work shares this machine.
	Load    [2]float64 `json:"load"`
	Minutes float64    `json:"minutes"`
}

// document is bench/results.json.
type document struct {
	Machine map[string]any `json:"machine"`
	Runs    map[string]run `json:"runs"`
	Results []result       `json:"results"`
}

func main() {
	group := flag.String("group", os.Getenv("BENCH"), "run only these groups, comma-separated ("+groupNames()+")")
	out := flag.String("out", "bench/results.json", "where to write the results (a group run replaces its own group's figures there)")
	reps := flag.Int("n", 10, "repetitions per figure")
	readme := flag.Bool("readme", false, "rewrite README.md's benchmark table from -out and exit")
	flag.IntVar(&scaleContainers, "scale-containers", scaleContainers, "running containers in the scale group")
	flag.IntVar(&scaleImages, "scale-images", scaleImages, "images listed in the scale group")
	flag.IntVar(&scaleClients, "scale-clients", scaleClients, "concurrent clients in the scale group")
	loop := flag.String("api-loop", "", "internal: run an API loop (cycle, concurrent, create, start, clear) as the benchmark user")
	host := flag.String("api-host", "", "internal: the engine for -api-loop")
	flag.Parse()
	if *readme {
		if err := writeReadme("README.md", *out); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if *loop != "" {
		if err := apiLoop(*host, *loop, *reps); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	want := map[string]bool{}
	for _, g := range strings.Split(*group, ",") {
		if g = strings.TrimSpace(g); g != "" {
			if !knownGroup(g) {
				fmt.Fprintf(os.Stderr, "bench: no group %q (%s)\n", g, groupNames())
				os.Exit(2)
			}
			want[g] = true
		}
	}

	env, err := newEnv()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	defer env.cleanup()
	// Interrupted, the engines stop and their files go, as at the end.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		fmt.Fprintln(os.Stderr, "bench: interrupted; stopping the engines")
		env.cleanup()
		os.Exit(1)
	}()

	var results []result
	var failed bool
	commit, _ := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	for _, g := range groups {
		if len(want) > 0 && !want[g.name] {
			continue
		}
		fmt.Fprintf(os.Stderr, "bench: %s\n", g.name)
		t0 := time.Now()
		ri := run{Command: command(), Time: t0.UTC().Format(time.RFC3339), Commit: strings.TrimSpace(string(commit))}
		ri.Load[0] = loadAvg()
		rs := g.run(env, *reps)
		ri.Load[1] = loadAvg()
		ri.Minutes = float64(int(time.Since(t0).Minutes()*10)) / 10
		for i := range rs {
			rs[i].Group = g.name
		}
		results = append(results, rs...)
		// Each group's figures are written as soon as it ends: a long run
		// cut short keeps what it measured.
		if err := writeResults(*out, rs, map[string]run{g.name: ri}); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			failed = true
		}
	}
	printTable(results)
	if failed {
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
	{"cri", criBench},
	// Last: it leaves 1,000 images behind in each engine.
	{"scale", scaleBench},
}

func groupNames() string {
	var n []string
	for _, g := range groups {
		n = append(n, g.name)
	}
	return strings.Join(n, ", ")
}

func knownGroup(name string) bool {
	for _, g := range groups {
		if g.name == name {
			return true
		}
	}
	return false
}

// command is how this run was started: hack/bench.sh passes what it was
// called with in BENCH_CMD.
func command() string {
	if c := os.Getenv("BENCH_CMD"); c != "" {
		return c
	}
	return strings.Join(append([]string{"go run ./hack/bench"}, os.Args[1:]...), " ")
}

func loadAvg() float64 {
	b, _ := os.ReadFile("/proc/loadavg")
	var l float64
	_, _ = fmt.Sscan(string(b), &l) // 0 when unreadable: the load shown beside a figure, not a figure
	return l
}

// stats is a series of durations or sizes.
type stats []float64

// median is the middle sample, or the mean of the middle two.
func (s stats) median() float64 {
	if len(s) == 0 {
		return 0
	}
	c := append(stats(nil), s...)
	sort.Float64s(c)
	m := len(c) / 2
	if len(c)%2 == 0 {
		return (c[m-1] + c[m]) / 2
	}
	return c[m]
}

// pct is the p-th percentile, nearest rank rounded up: with fewer than
// 100 samples p99 is the worst one.
func (s stats) pct(p float64) float64 {
	if len(s) == 0 {
		return 0
	}
	c := append(stats(nil), s...)
	sort.Float64s(c)
	i := int(float64(len(c)-1)*p/100 + 0.5)
	return c[i]
}

func ptr(f float64) *float64 { return &f }

// finish fills the ratio: lodge over the better anchor.
func finish(r result) result {
	if r.Lodge == nil {
		return r
	}
	best := 0.0
	for _, a := range []*float64{r.Docker, r.Podman, r.Containerd} {
		if a == nil || *a <= 0 {
			continue
		}
		if best == 0 || (!r.HigherIsBetter && *a < best) || (r.HigherIsBetter && *a > best) {
			best = *a
		}
	}
	if best > 0 {
		r.Ratio = ptr(*r.Lodge / best)
	}
	return r
}

// cell is one engine's figure as the table shows it: the median, and the
// p99 when there was more than one sample.
func cell(r result, engine string, v *float64) string {
	if v == nil {
		return "-"
	}
	s := num(*v) + " " + r.Unit
	if p, ok := r.P99[engine]; ok && r.Samples[engine] > 1 {
		s += " (p99 " + num(p) + ")"
	}
	return s
}

// num rounds a figure to what its size deserves.
func num(v float64) string {
	switch a := abs(v); {
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func abs(v float64) float64 {
	if v < 0 {
		return -v
	}
	return v
}

func ratioCell(r result) string {
	if r.Ratio == nil {
		return "-"
	}
	s := fmt.Sprintf("%.2fx", *r.Ratio)
	if r.HigherIsBetter {
		s += " (higher is better)"
	}
	return s
}

func printTable(rs []result) {
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	withCtrd := anyContainerd(rs)
	head := "FIGURE (median, p99)\tLODGE\tDOCKER ROOTLESS\tPODMAN"
	if withCtrd {
		head += "\tCONTAINERD ROOTLESS (CRI)"
	}
	fmt.Fprintln(w, head+"\tLODGE/BEST ANCHOR")
	for _, r := range rs {
		row := fmt.Sprintf("%s\t%s\t%s\t%s", r.Figure, cell(r, "lodge", r.Lodge), cell(r, "docker", r.Docker), cell(r, "podman", r.Podman))
		if withCtrd {
			row += "\t" + cell(r, "containerd", r.Containerd)
		}
		fmt.Fprintf(w, "%s\t%s\n", row, ratioCell(r))
	}
	w.Flush()
	for _, r := range rs {
		for _, n := range r.Notes {
			fmt.Printf("  %s: %s\n", r.Figure, n)
		}
	}
}

// anyContainerd says whether a figure has the CRI's anchor: only then do
// the tables give it a column.
func anyContainerd(rs []result) bool {
	for _, r := range rs {
		if r.Containerd != nil {
			return true
		}
	}
	return false
}

// writeResults writes this run's figures to path. Figures of groups this
// run did not measure are kept from the file, with their runs.
func writeResults(path string, rs []result, runs map[string]run) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	var doc document
	if b, err := os.ReadFile(path); err == nil {
		_ = json.Unmarshal(b, &doc) // an older or broken file is replaced
	}
	if doc.Runs == nil {
		doc.Runs = map[string]run{}
	}
	var kept []result
	for _, r := range doc.Results {
		if _, ok := runs[r.Group]; !ok && r.Group != "" {
			kept = append(kept, r)
		}
	}
	for g, ri := range runs {
		doc.Runs[g] = ri
	}
	for g := range doc.Runs {
		if !knownGroup(g) {
			delete(doc.Runs, g)
		}
	}
	// Keep the groups' order.
	byGroup := map[string][]result{}
	for _, r := range append(kept, rs...) {
		byGroup[r.Group] = append(byGroup[r.Group], r)
	}
	doc.Results = nil
	for _, g := range groups {
		doc.Results = append(doc.Results, byGroup[g.name]...)
	}
	host, _ := os.Hostname()
	doc.Machine = map[string]any{"host": host, "cpus": runtime.NumCPU(), "kernel": kernel()}
	b, _ := json.MarshalIndent(doc, "", "  ")
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func kernel() string {
	b, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return strings.TrimSpace(string(b))
}
