package cri

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	utilexec "k8s.io/utils/exec"

	"github.com/lodge-containers/lodge/daemon"
)

// streamFixture is a server over fakes with one running CRI container,
// one exited, and one running sandbox.
func streamFixture(t *testing.T) (*Server, runtimeapi.RuntimeServiceClient) {
	t.Helper()
	ctr := func(typ string, running bool) *container.InspectResponse {
		return &container.InspectResponse{
			Config: &container.Config{Labels: map[string]string{labelType: typ}},
			State:  &container.State{Running: running, Pid: 1},
		}
	}
	ctrs := &fakeContainers{ctrs: map[string]*container.InspectResponse{
		"run" + strings.Repeat("0", 61): ctr(typeContainer, true),
		"off" + strings.Repeat("0", 61): ctr(typeContainer, false),
		"pod" + strings.Repeat("0", 61): ctr(typeSandbox, true),
	}}
	for id, c := range ctrs.ctrs {
		c.ID = id
	}
	s := New(Backends{Containers: ctrs, Execs: &fakeExecs{}, Pods: refusingDialer{}}, quiet)
	return s, runtimeapi.NewRuntimeServiceClient(serve(t, s))
}

type refusingDialer struct{}

func (refusingDialer) DialPod(context.Context, string, int32) (net.Conn, error) {
	return nil, errors.New("no pods here")
}

// TestStreamURLs: nothing listens before the first streaming call; the
// URLs are on loopback, with the port the kernel gave; each token serves
// one request; calls on what cannot stream are refused before any URL.
func TestStreamURLs(t *testing.T) {
	s, rt := streamFixture(t)
	ctx := context.Background()
	if a := s.stream.listening(); a != "" {
		t.Fatalf("listening on %s before any streaming call", a)
	}
	ex, err := rt.Exec(ctx, &runtimeapi.ExecRequest{ContainerId: "run", Cmd: []string{"sh"}, Stdout: true})
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(ex.Url)
	if err != nil {
		t.Fatal(err)
	}
	if u.Hostname() != "127.0.0.1" || u.Port() == "" || u.Port() == "0" || u.Host != s.stream.listening() {
		t.Errorf("exec URL %s; listening on %q", ex.Url, s.stream.listening())
	}
	pf, err := rt.PortForward(ctx, &runtimeapi.PortForwardRequest{PodSandboxId: "pod", Port: []int32{80}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(pf.Url, "http://"+u.Host+"/portforward/") {
		t.Errorf("port-forward URL %s, exec's %s", pf.Url, ex.Url)
	}
	// A plain GET is no stream, but it spends the token.
	if code := httpStatus(t, ex.Url); code == http.StatusNotFound {
		t.Errorf("first use of the exec URL: %d", code)
	}
	if code := httpStatus(t, ex.Url); code != http.StatusNotFound {
		t.Errorf("second use of the exec URL: %d, want 404", code)
	}
	if code := httpStatus(t, "http://"+u.Host+"/exec/guessed"); code != http.StatusNotFound {
		t.Errorf("a guessed token: %d, want 404", code)
	}

	for name, call := range map[string]func() error{
		"exec into a stopped container": func() error {
			_, err := rt.Exec(ctx, &runtimeapi.ExecRequest{ContainerId: "off", Cmd: []string{"sh"}, Stdout: true})
			return err
		},
		"exec with no command": func() error {
			_, err := rt.Exec(ctx, &runtimeapi.ExecRequest{ContainerId: "run", Stdout: true})
			return err
		},
		"exec of a sandbox": func() error {
			_, err := rt.Exec(ctx, &runtimeapi.ExecRequest{ContainerId: "pod", Cmd: []string{"sh"}, Stdout: true})
			return err
		},
		"exec with a tty and stderr": func() error {
			_, err := rt.Exec(ctx, &runtimeapi.ExecRequest{ContainerId: "run", Cmd: []string{"sh"}, Tty: true, Stdout: true, Stderr: true})
			return err
		},
		"attach without an attacher": func() error {
			_, err := rt.Attach(ctx, &runtimeapi.AttachRequest{ContainerId: "run", Stdout: true})
			return err
		},
		"port-forward to a port out of range": func() error {
			_, err := rt.PortForward(ctx, &runtimeapi.PortForwardRequest{PodSandboxId: "pod", Port: []int32{70000}})
			return err
		},
		"port-forward to a container": func() error {
			_, err := rt.PortForward(ctx, &runtimeapi.PortForwardRequest{PodSandboxId: "run", Port: []int32{80}})
			return err
		},
	} {
		if err := call(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}

	// Stopped with the CRI service: the port is closed and no URL is
	// handed out.
	addr := s.stream.listening()
	s.stream.close()
	if _, err := rt.Exec(ctx, &runtimeapi.ExecRequest{ContainerId: "run", Cmd: []string{"sh"}, Stdout: true}); status.Code(err) != codes.Unavailable {
		t.Errorf("exec after the streaming server stopped: %v", err)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after close", addr)
	}
}

// TestStreamCloseEndsStreams: stopping the streaming server ends the
// streams in flight too, though http.Server lets go of them once they
// are upgraded.
func TestStreamCloseEndsStreams(t *testing.T) {
	s, rt := streamFixture(t)
	ex, err := rt.Exec(context.Background(), &runtimeapi.ExecRequest{ContainerId: "run", Cmd: []string{"sh"}, Stdout: true})
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(ex.Url)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// kubectl's SPDY upgrade; the server then waits for its streams.
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\nContent-Length: 0\r\n\r\n", u.Path, u.Host)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %s", resp.Status)
	}
	s.stream.close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.Copy(io.Discard, c); err != nil {
		t.Errorf("the upgraded connection after close: %v, want its end", err)
	}
}

func httpStatus(t *testing.T, u string) int {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestStreamExec: the exec table's frames reach the client's stdout and
// stderr apart, and a non-zero exit is an error carrying its code, which
// the library sends the client.
func TestStreamExec(t *testing.T) {
	s, _ := streamFixture(t)
	var out, errb bytes.Buffer
	err := streamRuntime{s}.Exec(context.Background(), "run", []string{"x"}, nil, nopCloser{&out}, nopCloser{&errb}, false, nil)
	var ee utilexec.ExitError
	if !errors.As(err, &ee) || !ee.Exited() || ee.ExitStatus() != 3 {
		t.Errorf("exec exiting 3: %v", err)
	}
	if out.String() != "out\n" || errb.String() != "err\n" {
		t.Errorf("stdout %q, stderr %q", out.String(), errb.String())
	}
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// TestSplice: the client's end of input reaches the pod as a half close,
// and the pod's answer after it still reaches the client.
func TestSplice(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	podErr := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			podErr <- err
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		got, err := io.ReadAll(c) // to the client's end of input
		if err != nil {
			podErr <- err
			return
		}
		_, err = c.Write(append([]byte("pong:"), got...))
		podErr <- err
	}()
	conn, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var back bytes.Buffer
	client := struct {
		io.Reader
		io.Writer
	}{strings.NewReader("ping"), &back}
	if err := splice(context.Background(), conn, client); err != nil {
		t.Fatal(err)
	}
	if err := <-podErr; err != nil {
		t.Fatalf("the pod's side: %v", err)
	}
	if back.String() != "pong:ping" {
		t.Errorf("the client got %q", back.String())
	}
}

// fakeAttacher writes one frame of each stream and records what it was
// asked.
type fakeAttacher struct {
	opts  []daemon.AttachOptions
	sizes [][2]uint
}

func (f *fakeAttacher) Attach(_ context.Context, _ string, opts daemon.AttachOptions, client daemon.AttachStream) error {
	f.opts = append(f.opts, opts)
	in, _ := io.ReadAll(client)
	for _, fr := range []struct {
		stream byte
		text   string
	}{{1, "out:" + string(in)}, {2, "err\n"}} {
		hdr := []byte{fr.stream, 0, 0, 0, 0, 0, 0, byte(len(fr.text))}
		if _, err := client.Write(append(hdr, fr.text...)); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeAttacher) Resize(_ context.Context, _ string, h, w uint) error {
	f.sizes = append(f.sizes, [2]uint{h, w})
	return nil
}

// TestStreamAttach: the client's input reaches the container, its output
// comes back split, without detach keys; a container that stopped after
// its URL was handed out is refused rather than waited for.
func TestStreamAttach(t *testing.T) {
	s, _ := streamFixture(t)
	fa := &fakeAttacher{}
	s.b.Attach = fa
	var out, errb bytes.Buffer
	err := streamRuntime{s}.Attach(context.Background(), "run"+strings.Repeat("0", 61), strings.NewReader("hi\n"), nopCloser{&out}, nopCloser{&errb}, false, nil)
	if err != nil || out.String() != "out:hi\n" || errb.String() != "err\n" {
		t.Errorf("attach: %v; stdout %q, stderr %q", err, out.String(), errb.String())
	}
	if len(fa.opts) != 1 || !fa.opts[0].Stdin || !fa.opts[0].Stdout || !fa.opts[0].Stderr || !fa.opts[0].Stream || !fa.opts[0].NoDetachKeys {
		t.Errorf("attach options: %+v", fa.opts)
	}
	err = streamRuntime{s}.Attach(context.Background(), "off"+strings.Repeat("0", 61), nil, nopCloser{&out}, nil, false, nil)
	if err == nil || len(fa.opts) != 1 {
		t.Errorf("attach to a stopped container: %v, %d attaches", err, len(fa.opts))
	}
}

// TestSpliceSilentPod: once the client is done, a pod that stays silent
// past podIdleAfterClient no longer holds the forward open; one that
// answers within it, however late after the client's end, is heard.
func TestSpliceSilentPod(t *testing.T) {
	defer func(d time.Duration) { podIdleAfterClient = d }(podIdleAfterClient)
	podIdleAfterClient = 300 * time.Millisecond
	for _, tc := range []struct {
		name   string
		answer bool
	}{{"silent", false}, {"late", true}} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			release := make(chan struct{})
			defer close(release)
			go func() {
				c, err := l.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				io.ReadAll(c)
				if tc.answer {
					time.Sleep(200 * time.Millisecond) // within the idle time
					c.Write([]byte("late"))
				}
				<-release // and never closes while the test runs
			}()
			conn, err := net.Dial("tcp", l.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			var back bytes.Buffer
			client := struct {
				io.Reader
				io.Writer
			}{strings.NewReader("q"), &back}
			t0 := time.Now()
			if err := splice(context.Background(), conn, client); err != nil {
				t.Fatal(err)
			}
			if d := time.Since(t0); d > 3*time.Second {
				t.Errorf("splice returned after %v", d)
			}
			if want := map[bool]string{true: "late"}[tc.answer]; back.String() != want {
				t.Errorf("the client got %q, want %q", back.String(), want)
			}
		})
	}
}
