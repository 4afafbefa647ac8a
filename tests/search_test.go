package tests

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/moby/moby/api/types/registry"
)

// searchIndex is a registry's v1 search API on 127.0.0.1 (plain HTTP, as
// a loopback registry is reached): /v1/search finds the names holding q,
// at most n of them; the repository "private" wants alice's basic auth,
// which /v2/ checks too (docker login asks it).
type searchIndex struct {
	addr string
	mu   sync.Mutex
	asks []string // "q n" of each search
}

func startSearchIndex(t *testing.T) *searchIndex {
	t.Helper()
	all := []registry.SearchResult{
		{Name: "busybox", Description: "Busybox base image.", StarCount: 3000, IsOfficial: true},
		{Name: "team/busybox-tools", Description: "Tools on busybox, with a description longer than the table shows", StarCount: 5, IsAutomated: true},
		{Name: "team/busybox-old", StarCount: 0},
		{Name: "private", Description: "needs a login", StarCount: 1},
	}
	idx := &searchIndex{}
	authorized := func(r *http.Request) bool {
		u, p, ok := r.BasicAuth()
		return ok && u == "alice" && p == "s3cret"
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/_ping", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"standalone":true}`)) })
	mux.HandleFunc("/v2/", func(w http.ResponseWriter, r *http.Request) {
		if !authorized(r) {
			w.Header().Set("WWW-Authenticate", `Basic realm="lodge-test"`)
			w.WriteHeader(http.StatusUnauthorized)
		}
	})
	mux.HandleFunc("/v1/search", func(w http.ResponseWriter, r *http.Request) {
		q, n := r.URL.Query().Get("q"), r.URL.Query().Get("n")
		idx.mu.Lock()
		idx.asks = append(idx.asks, q+" "+n)
		idx.mu.Unlock()
		if strings.Contains(q, "private") && !authorized(r) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var limit int
		json.Unmarshal([]byte(n), &limit)
		out := registry.SearchResults{Query: q, Results: []registry.SearchResult{}}
		for _, res := range all {
			if strings.Contains(res.Name, q) && len(out.Results) < limit {
				out.Results = append(out.Results, res)
			}
		}
		out.NumResults = len(out.Results)
		json.NewEncoder(w).Encode(out)
	})
	idx.addr = serveLoopback(t, mux)
	return idx
}

func (idx *searchIndex) lastAsk() string {
	idx.mu.Lock()
	defer idx.mu.Unlock()
	if len(idx.asks) == 0 {
		return ""
	}
	return idx.asks[len(idx.asks)-1]
}

// TestSearch: docker search asks the registry the term names for the
// rest of the term, and filters and limits its answer as Docker does;
// a registry's private search needs the user's docker login.
func TestSearch(t *testing.T) {
	s, docker := containerSession(t)
	idx := startSearchIndex(t)
	term := idx.addr + "/busybox"
	search := func(args ...string) string {
		t.Helper()
		args = append(append([]string{"search", "--format", "{{.Name}}|{{.StarCount}}|{{.IsOfficial}}"}, args...), term)
		return strings.TrimSpace(s.must(docker, args...).stdout)
	}
	if got := search(); got != "busybox|3000|[OK]\nteam/busybox-tools|5|\nteam/busybox-old|0|" {
		t.Errorf("docker search %s:\n%s", term, got)
	}
	if ask := idx.lastAsk(); ask != "busybox 25" {
		t.Errorf("the registry was asked %q, want the term without its host and Docker's 25", ask)
	}
	if got := search("--filter", "is-official=true"); got != "busybox|3000|[OK]" {
		t.Errorf("--filter is-official=true:\n%s", got)
	}
	if got := search("--filter", "stars=4"); got != "busybox|3000|[OK]\nteam/busybox-tools|5|" {
		t.Errorf("--filter stars=4:\n%s", got)
	}
	if got := search("--limit", "1"); got != "busybox|3000|[OK]" || idx.lastAsk() != "busybox 1" {
		t.Errorf("--limit 1 (asked %q):\n%s", idx.lastAsk(), got)
	}
	if got := search("--filter", "is-automated=true"); got != "" {
		t.Errorf("--filter is-automated=true (deprecated, finds nothing in Docker):\n%s", got)
	}
	table := s.must(docker, "search", term).stdout
	if !strings.HasPrefix(table, "NAME") || !strings.Contains(table, "Tools on busybox") {
		t.Errorf("docker search's table:\n%s", table)
	}
	for _, bad := range [][]string{{"--filter", "colour=red"}, {"--filter", "stars=many"}, {"--filter", "is-official=maybe"}, {"--limit", "101"}} {
		if r := s.run(docker, append(append([]string{"search"}, bad...), term)...); r.code == 0 || !strings.Contains(r.stderr, "invalid") && !strings.Contains(r.stderr, "outside the range") {
			t.Errorf("docker search %v: %s", bad, r)
		}
	}
	if r := s.run(docker, "search", "https://"+term); r.code == 0 || !strings.Contains(r.stderr, "should not have a scheme") {
		t.Errorf("a term with a scheme: %s", r)
	}

	private := idx.addr + "/private"
	if r := s.run(docker, "search", private); r.code == 0 {
		t.Errorf("a private search without a login: %s", r)
	}
	s.must(docker, "login", "-u", "alice", "-p", "s3cret", idx.addr)
	if got := strings.TrimSpace(s.must(docker, "search", "--format", "{{.Name}} {{.Description}}", private).stdout); got != "private needs a login" {
		t.Errorf("a private search after docker login: %q", got)
	}
}
