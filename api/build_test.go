package api

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/lodge-containers/lodge/build"
	"github.com/lodge-containers/lodge/errdefs"
)

// fakeBuilds records the options it was given and answers as told.
type fakeBuilds struct {
	got    build.Options
	body   string
	output string
	err    error
}

func (f *fakeBuilds) Build(ctx context.Context, r io.Reader, opts build.Options, out io.Writer) (string, error) {
	f.got = opts
	b, _ := io.ReadAll(r)
	f.body = string(b)
	io.WriteString(out, f.output)
	if f.err != nil {
		return "", f.err
	}
	return "sha256:abc", nil
}

func (f *fakeBuilds) PruneCache(context.Context) ([]string, uint64, error) {
	return []string{"sha256:1"}, 42, nil
}

var _ BuildBackend = (*fakeBuilds)(nil)

// messages decodes a JSON message stream into its objects.
func messages(t *testing.T, r io.Reader) []map[string]any {
	t.Helper()
	var out []map[string]any
	dec := json.NewDecoder(r)
	for {
		var m map[string]any
		if err := dec.Decode(&m); err == io.EOF {
			return out
		} else if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
}

func TestBuildRoute(t *testing.T) {
	q := url.Values{"t": {"a:1", "b"}, "dockerfile": {"sub/Dockerfile"}, "buildargs": {`{"X":"1","Y":null}`},
		"labels": {`{"k":"v"}`}, "extrahosts": {"h:1.2.3.4"}, "target": {"t1"}, "nocache": {"1"},
		"cachefrom": {`["img"]`}, "networkmode": {"none"}, "pull": {"1"}}
	tests := []struct {
		name      string
		query     url.Values
		fake      fakeBuilds
		status    int
		check     func(t *testing.T, f *fakeBuilds, msgs []map[string]any)
		bodyHas   string
		noBackend bool
	}{
		{name: "options and stream", query: q, fake: fakeBuilds{output: "Step 1/1 : FROM busybox\n"}, status: 200,
			check: func(t *testing.T, f *fakeBuilds, msgs []map[string]any) {
				o := f.got
				if fmt.Sprint(o.Tags) != "[a:1 b]" || o.Dockerfile != "sub/Dockerfile" || o.Target != "t1" || !o.NoCache || !o.Pull ||
					o.Network != "none" || *o.BuildArgs["X"] != "1" || o.BuildArgs["Y"] != nil || o.Labels["k"] != "v" ||
					fmt.Sprint(o.ExtraHosts) != "[h:1.2.3.4]" || fmt.Sprint(o.CacheFrom) != "[img]" {
					t.Errorf("options: %+v", o)
				}
				if f.body != "context" {
					t.Errorf("body %q", f.body)
				}
				if len(msgs) != 2 || msgs[0]["stream"] != "Step 1/1 : FROM busybox\n" || msgs[1]["aux"].(map[string]any)["ID"] != "sha256:abc" {
					t.Errorf("messages: %v", msgs)
				}
			}},
		{name: "quiet prints the ID only", query: url.Values{"q": {"1"}}, fake: fakeBuilds{output: "Step 1/1\n"}, status: 200,
			check: func(t *testing.T, f *fakeBuilds, msgs []map[string]any) {
				if len(msgs) != 2 || msgs[1]["stream"] != "sha256:abc\n" {
					t.Errorf("messages: %v", msgs)
				}
			}},
		{name: "failed RUN ends the stream with its code", fake: fakeBuilds{output: "Step 2/3 : RUN exit 3\n",
			err: fmt.Errorf("The command '/bin/sh -c exit 3' returned a non-zero code: 3: %w", &build.ExitError{Code: 3})}, status: 200,
			check: func(t *testing.T, f *fakeBuilds, msgs []map[string]any) {
				last := msgs[len(msgs)-1]
				d, _ := last["errorDetail"].(map[string]any)
				if d == nil || d["code"] != float64(3) || !strings.Contains(last["error"].(string), "non-zero code: 3") {
					t.Errorf("messages: %v", msgs)
				}
			}},
		{name: "quiet failure sends what it held", query: url.Values{"q": {"1"}}, fake: fakeBuilds{output: "out\n", err: &build.ExitError{Code: 1}}, status: 200,
			check: func(t *testing.T, f *fakeBuilds, msgs []map[string]any) {
				if len(msgs) != 2 || msgs[0]["stream"] != "out\n" || msgs[1]["error"] != "exit code 1" {
					t.Errorf("messages: %v", msgs)
				}
			}},
		{name: "bad Dockerfile before output is a status", fake: fakeBuilds{err: errdefs.InvalidArgumentf("dockerfile parse error line 1")}, status: 400, bodyHas: "parse error"},
		{name: "BuildKit", query: url.Values{"version": {"2"}}, status: 501, bodyHas: "DOCKER_BUILDKIT=0"},
		{name: "git remote", query: url.Values{"remote": {"https://example.invalid/x.git"}}, status: 501, bodyHas: "not git"},
		{name: "bad buildargs", query: url.Values{"buildargs": {"{"}}, status: 400, bodyHas: "buildargs"},
		{name: "custom network", query: url.Values{"networkmode": {"mynet"}}, status: 501, bodyHas: "mynet"},
		{name: "no backend", noBackend: true, status: 501, bodyHas: "does not implement POST /build"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.fake
			b := Backends{Build: &f}
			if tt.noBackend {
				b.Build = nil
			}
			srv := httptest.NewServer(NewServer(b, quiet()))
			defer srv.Close()
			resp, err := http.Post(srv.URL+"/v1.51/build?"+tt.query.Encode(), "application/x-tar", strings.NewReader("context"))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.status {
				b, _ := io.ReadAll(resp.Body)
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, b)
			}
			if tt.bodyHas != "" {
				b, _ := io.ReadAll(resp.Body)
				if !strings.Contains(string(b), tt.bodyHas) {
					t.Fatalf("body %s lacks %q", b, tt.bodyHas)
				}
				return
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("content type %q", ct)
			}
			tt.check(t, &f, messages(t, resp.Body))
		})
	}
}

func TestBuildKitRoutesSayWhy(t *testing.T) {
	srv := httptest.NewServer(NewServer(Backends{Build: &fakeBuilds{}}, quiet()))
	defer srv.Close()
	for _, p := range []string{"/session", "/grpc"} {
		resp, err := http.Post(srv.URL+p, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 501 || !strings.Contains(string(b), "classic builder") {
			t.Errorf("%s: %d %s", p, resp.StatusCode, b)
		}
	}
	resp, err := http.Post(srv.URL+"/build/prune?all=1", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var pr struct {
		CachesDeleted  []string
		SpaceReclaimed uint64
	}
	json.NewDecoder(resp.Body).Decode(&pr)
	if resp.StatusCode != 200 || len(pr.CachesDeleted) != 1 || pr.SpaceReclaimed != 42 {
		t.Errorf("prune: %d %+v", resp.StatusCode, pr)
	}
}

// fakeBuildKit is a BuildKit helper on the other end of a pipe: it checks
// the request head the API replays, answers 101 and echoes what follows.
type fakeBuildKit struct {
	t    *testing.T
	head chan *http.Request
}

func (f *fakeBuildKit) Dial(ctx context.Context) (net.Conn, error) {
	api, helper := net.Pipe()
	go func() {
		defer helper.Close()
		br := bufio.NewReader(helper)
		req, err := http.ReadRequest(br)
		if err != nil {
			f.t.Errorf("the helper got no request head: %v", err)
			return
		}
		f.head <- req
		io.WriteString(helper, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
		io.Copy(helper, br)
	}()
	return api, nil
}

func (f *fakeBuildKit) PruneCache(context.Context) ([]string, uint64, error) {
	return []string{"bk1", "bk2"}, 100, nil
}

var _ BuildKitBackend = (*fakeBuildKit)(nil)

func TestBuildKitForwardsUpgrades(t *testing.T) {
	bk := &fakeBuildKit{t: t, head: make(chan *http.Request, 1)}
	srv := httptest.NewServer(NewServer(Backends{System: fakeSystem{}, Build: &fakeBuilds{}, BuildKit: bk}, quiet()))
	defer srv.Close()
	for _, p := range []string{"/v1.51/session", "/grpc"} {
		t.Run(p, func(t *testing.T) {
			c, err := net.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			// The client's first bytes after the head come in the same
			// write, as a client that does not wait for the 101 sends them:
			// they must reach the helper after the replayed head.
			fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nX-Docker-Expose-Session-Uuid: s1\r\n\r\nPRI * HTTP/2.0", p)
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("status %d", resp.StatusCode)
			}
			req := <-bk.head
			if req.URL.Path != p || req.Header.Get("Upgrade") != "h2c" || req.Header.Get("X-Docker-Expose-Session-Uuid") != "s1" {
				t.Errorf("replayed head: %s %s %v", req.Method, req.URL, req.Header)
			}
			got := make([]byte, len("PRI * HTTP/2.0"))
			if _, err := io.ReadFull(br, got); err != nil || string(got) != "PRI * HTTP/2.0" {
				t.Errorf("echo through the proxy: %q, %v", got, err)
			}
		})
	}

	resp, err := http.Get(srv.URL + "/_ping")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if v := resp.Header.Get("Builder-Version"); v != "2" {
		t.Errorf("Builder-Version with BuildKit: %q", v)
	}
	resp, err = http.Post(srv.URL+"/build/prune", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var pr struct {
		CachesDeleted  []string
		SpaceReclaimed uint64
	}
	json.NewDecoder(resp.Body).Decode(&pr)
	if len(pr.CachesDeleted) != 3 || pr.SpaceReclaimed != 142 {
		t.Errorf("prune with BuildKit: %+v", pr)
	}
}

func TestPingSaysClassicWithoutBuildKit(t *testing.T) {
	srv := httptest.NewServer(NewServer(Backends{System: fakeSystem{}, Build: &fakeBuilds{}}, quiet()))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/_ping")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if v := resp.Header.Get("Builder-Version"); v != "1" {
		t.Errorf("Builder-Version without BuildKit: %q", v)
	}
}
