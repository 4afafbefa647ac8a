package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
)

// The README's benchmark table lives between these markers; -readme
// rewrites what is between them from bench/results.json.
const (
	readmeBegin = "<!-- bench:begin (go run ./hack/bench -readme writes this from bench/results.json) -->"
	readmeEnd   = "<!-- bench:end -->"
)

func writeReadme(readmePath, resultsPath string) error {
	b, err := os.ReadFile(resultsPath)
	if err != nil {
		return err
	}
	var doc document
	if err := json.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("%s: %w", resultsPath, err)
	}
	if len(doc.Results) == 0 {
		return fmt.Errorf("%s holds no figures", resultsPath)
	}
	rm, err := os.ReadFile(readmePath)
	if err != nil {
		return err
	}
	i, j := bytes.Index(rm, []byte(readmeBegin)), bytes.Index(rm, []byte(readmeEnd))
	if i < 0 || j < i {
		return fmt.Errorf("%s has no %q ... %q section", readmePath, readmeBegin, readmeEnd)
	}
	var out bytes.Buffer
	out.Write(rm[:i+len(readmeBegin)])
	out.WriteString("\n")
	out.WriteString(readmeTable(doc))
	out.Write(rm[j:])
	return os.WriteFile(readmePath, out.Bytes(), 0o644)
}

// readmeTable is the section: how the figures were made, the table, the
// notes.
func readmeTable(doc document) string {
	var s strings.Builder
	// Runs that share a command and commit are one run.
	type key struct{ cmd, commit string }
	byRun := map[key][]string{}
	first := map[key]run{}
	for _, g := range groups {
		ri, ok := doc.Runs[g.name]
		if !ok {
			continue
		}
		k := key{ri.Command, ri.Commit}
		if _, ok := first[k]; !ok {
			first[k] = ri
		}
		byRun[k] = append(byRun[k], fmt.Sprintf("%s %.1f→%.1f", g.name, ri.Load[0], ri.Load[1]))
	}
	keys := make([]key, 0, len(byRun))
	for k := range byRun {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(a, b int) bool { return first[keys[a]].Time < first[keys[b]].Time })
	fmt.Fprintf(&s, "\nMachine: %v CPUs, kernel %v. Each cell is the median, with the p99 in brackets (the worst sample when there are fewer than 100; for a rate, the low side) where the figure has more than one sample. Made by:\n\n", doc.Machine["cpus"], doc.Machine["kernel"])
	for _, k := range keys {
		ri := first[k]
		fmt.Fprintf(&s, "- `%s` at commit %s, %s; 1-minute load average when each group started → ended: %s\n", k.cmd, k.commit, ri.Time, strings.Join(byRun[k], ", "))
	}
	withCtrd := anyContainerd(doc.Results)
	if withCtrd {
		s.WriteString("\n| figure | lodge | Docker rootless | Podman | containerd rootless (CRI) | lodge / best |\n| --- | --- | --- | --- | --- | --- |\n")
	} else {
		s.WriteString("\n| figure | lodge | Docker rootless | Podman | lodge / best |\n| --- | --- | --- | --- | --- |\n")
	}
	esc := func(v string) string { return strings.ReplaceAll(v, "|", "\\|") }
	for _, r := range doc.Results {
		fmt.Fprintf(&s, "| %s | %s | %s | %s | ", esc(r.Figure), cell(r, "lodge", r.Lodge), cell(r, "docker", r.Docker), cell(r, "podman", r.Podman))
		if withCtrd {
			fmt.Fprintf(&s, "%s | ", cell(r, "containerd", r.Containerd))
		}
		fmt.Fprintf(&s, "%s |\n", ratioCell(r))
	}
	var notes []string
	for _, r := range doc.Results {
		for _, n := range r.Notes {
			if len(n) > 300 {
				n = n[:300] + "…"
			}
			notes = append(notes, fmt.Sprintf("- %s: %s", esc(r.Figure), strings.Join(strings.Fields(n), " ")))
		}
	}
	if len(notes) > 0 {
		s.WriteString("\nNotes from the run:\n\n" + strings.Join(notes, "\n") + "\n")
	}
	s.WriteString("\n")
	return s.String()
}
