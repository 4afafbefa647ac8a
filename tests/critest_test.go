package tests

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"maps"
	"math/big"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/lodge-containers/lodge/hack/fixture"
)

// critestSkips are critest's tests that cannot pass against rootless
// lodge on this machine, each with the reason (the README's table is made
// from the same reasons). A regular expression of the test's text each.
var critestSkips = []struct{ test, reason string }{
	{`public image with digest should be pulled and removed`, "its image is named by a fixed digest of an image on gcr.io; no internet here, and an image made offline has another digest"},
	{`runtime should support port mapping with only container port`, podIPReason},
	{`Multiple Containers .* should support network$`, podIPReason},
	{`runtime should support portforward \[Conformance\]$`, "before port-forwarding it checks the web server by dialling the pod's IP from the host: " + podIPReason},
}

// The whole suite's (make conformance; none of these is [Conformance]).
var critestSkipsFull = []struct{ test, reason string }{
	{`NoNewPrivs`, "its image (e2e-test-images/nonewprivs, a setuid program) is not made offline here"},
	{`Container Mount Propagation`, "critest itself mounts on the host to test propagation, which needs root on the host"},
	{`should support non-recursive readonly mounts`, "critest itself mounts a tmpfs on the host, which needs root on the host"},
	{`runtime should support HostNetwork is true$`, hostNetReason},
	{`runtime should support portforward in host network$`, hostNetReason},
	{`runtime should support MaskedPaths$`, "it masks /bin/ls and expects sh -c ls to fail, but Debian's busybox-static shell runs its applets without exec, so /bin/ls is never opened (lodge's masking itself: tests/security_test.go)"},
	{`should terminate with exitCode 137 and reason OOMKilled`, "it needs a memory limit, and this machine delegates no memory controller to users (lodge refuses the limit, naming the controller)"},
}

// hostNetReason is why the tests of a pod on the host's network fail.
const hostNetReason = "it checks the pod against the host's own network; a rootless pod's \"host\" network is lodged's network namespace, not the host's"

// podIPReason is why the tests that dial a pod's IP from the host fail.
const podIPReason = "it dials the pod's IP from the host: rootless, pod IPs live in the user's network namespace, which the host does not route to (as with rootless containerd; hostPort mappings reach the pod)"

// critestImage is a one-layer image from the host's static busybox, with
// a config of its own and maybe files added in a second layer.
type critestImage struct {
	refs  []string // under the registry, without it
	cfg   v1.Config
	files map[string]string
	exes  map[string][]byte // executables, mode 0755
}

// critestImages are the images critest pulls, made offline and served as
// registry.k8s.io (e2e-test-images, pause) and gcr.io
// (k8s-staging-cri-tools) through startRegistryProxy. critest's
// --registry-prefix is no help: v1.37 drops the tag from the names it
// prefixes and checks the pulls under the names unprefixed.
func critestImages(nginx []byte) []critestImage {
	sh := v1.Config{Cmd: []string{"sh"}}
	var imgs []critestImage
	add := func(cfg v1.Config, files map[string]string, refs ...string) {
		imgs = append(imgs, critestImage{refs: refs, cfg: cfg, files: files})
	}
	add(sh, nil, "e2e-test-images/busybox:1.29-2")
	// The web servers on port 80: nginx's stand-in (testdata/critestnginx,
	// named as nginx's master process, for the pid namespace tests), and
	// busybox httpd for httpd's.
	imgs = append(imgs, critestImage{refs: []string{"e2e-test-images/nginx:1.14-2"},
		cfg: v1.Config{Cmd: []string{"/usr/sbin/nginx"}}, exes: map[string][]byte{"usr/sbin/nginx": nginx}})
	add(v1.Config{Cmd: []string{"sh", "-c", "echo 'httpd (busybox) serving /var/www on port 80'; exec httpd -f -p 80 -h /var/www"}},
		map[string]string{"var/www/index.html": "<h1>Welcome to lodge's critest web server</h1>\n"},
		"e2e-test-images/httpd:2.4.39-4")
	wwwData := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33:www-data:/var/www:/bin/false\nuser:x:1000:1000::/home/user:/bin/sh\n",
		"etc/group":  "root:x:0:\nwww-data:x:33:\nusers:x:100:\ngroup50000:x:50000:user\n",
	}
	add(v1.Config{User: "1002", Cmd: []string{"sh"}}, nil, "k8s-staging-cri-tools/test-image-user-uid:latest")
	add(v1.Config{User: "www-data", Cmd: []string{"sh"}}, wwwData, "k8s-staging-cri-tools/test-image-user-username:latest")
	add(v1.Config{User: "1003:users", Cmd: []string{"sh"}}, wwwData, "k8s-staging-cri-tools/test-image-user-uid-group:latest")
	add(v1.Config{User: "www-data:users", Cmd: []string{"sh"}}, wwwData, "k8s-staging-cri-tools/test-image-user-username-group:latest")
	add(v1.Config{User: "1000", Cmd: []string{"sh"}}, wwwData, "k8s-staging-cri-tools/test-image-predefined-group:latest")
	add(v1.Config{Cmd: []string{"sh"}, Labels: map[string]string{"critest": "latest"}}, nil, "k8s-staging-cri-tools/test-image-latest:latest")
	add(v1.Config{Cmd: []string{"sh"}, Labels: map[string]string{"critest": "tag"}}, nil,
		"k8s-staging-cri-tools/test-image-tag:test", "k8s-staging-cri-tools/test-image-tag:all")
	for i := 1; i <= 3; i++ {
		add(v1.Config{Cmd: []string{"sh"}, Labels: map[string]string{"critest": fmt.Sprint("image-", i)}}, nil,
			fmt.Sprintf("k8s-staging-cri-tools/test-image-%d:latest", i))
	}
	add(v1.Config{Cmd: []string{"sh"}, Labels: map[string]string{"critest": "tags"}}, nil,
		"k8s-staging-cri-tools/test-image-tags:1", "k8s-staging-cri-tools/test-image-tags:2", "k8s-staging-cri-tools/test-image-tags:3")
	add(v1.Config{Cmd: []string{"sleep", "infinity"}, Labels: map[string]string{"critest": "pause"}}, nil, "pause:3.9")
	return imgs
}

// pushCritestImages makes critest's images and pushes them to the
// registry at reg.
func pushCritestImages(t *testing.T, reg string) {
	t.Helper()
	base, err := fixture.Layer()
	if err != nil {
		t.Fatalf("busybox-static is needed for critest's images: %v", err)
	}
	baseLayer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(base)), nil })
	if err != nil {
		t.Fatal(err)
	}
	more := appletsLayer(t)
	moreLayer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(more)), nil })
	if err != nil {
		t.Fatal(err)
	}
	nginx, err := os.ReadFile(staticTool(t, "critestnginx"))
	if err != nil {
		t.Fatal(err)
	}
	for _, ci := range critestImages(nginx) {
		layers := []v1.Layer{baseLayer, moreLayer}
		if len(ci.files)+len(ci.exes) > 0 {
			b := filesLayer(t, ci.files, ci.exes)
			l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
			if err != nil {
				t.Fatal(err)
			}
			layers = append(layers, l)
		}
		img, err := mutate.AppendLayers(empty.Image, layers...)
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		cf = cf.DeepCopy()
		cf.Architecture, cf.OS, cf.Created = "amd64", "linux", v1.Time{Time: time.Unix(1700000000, 0)}
		cf.Config = ci.cfg
		cf.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
		if img, err = mutate.ConfigFile(img, cf); err != nil {
			t.Fatal(err)
		}
		for _, r := range ci.refs {
			ref, err := name.ParseReference(reg+"/"+r, name.Insecure)
			if err != nil {
				t.Fatal(err)
			}
			if err := remote.Write(ref, img); err != nil {
				t.Fatalf("pushing %s: %v", ref, err)
			}
		}
	}
}

// pgrepScript and ipcsScript stand in for pgrep and ipcs, which Debian's
// busybox-static lacks and critest's exec and IPC tests run. pgrep: the
// pids whose command name holds the pattern, exit 1 when none does; ipcs
// -m: the shared memory segments, as util-linux prints them.
const (
	pgrepScript = `#!/bin/sh
found=1
for d in /proc/[0-9]*; do
	read -r comm <"$d/comm" 2>/dev/null || continue
	case $comm in *"$1"*) echo "${d#/proc/}"; found=0 ;; esac
done
exit $found
`
	ipcsScript = `#!/bin/sh
echo
echo "------ Shared Memory Segments --------"
echo "key        shmid      owner      perms      bytes      nattch     status"
awk 'NR > 1 { printf "0x%08x %-10s %-10s %-10o %-10s %-10s\n", $1, $2, $8, $3, $4, $7 }' /proc/sysvipc/shm
echo
`
)

// appletsLayer is busybox with every applet of the host's build as a
// hard link, as the busybox images critest names have them (masking
// /bin/ls must not mask the shell through a symlink), and pgrep and ipcs.
func appletsLayer(t *testing.T) []byte {
	t.Helper()
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	list, err := exec.Command(bb, "--list").Output()
	if err != nil {
		t.Fatalf("busybox --list: %v", err)
	}
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	at := time.Unix(1700000000, 0)
	add := func(h *tar.Header, body []byte) {
		h.ModTime = at
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	add(&tar.Header{Name: "var/run/", Typeflag: tar.TypeDir, Mode: 0o755}, nil)
	add(&tar.Header{Name: "bin/busybox", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(bin))}, bin)
	for _, a := range strings.Fields(string(list)) {
		if a == "busybox" || strings.Contains(a, "/") {
			continue
		}
		add(&tar.Header{Name: "bin/" + a, Typeflag: tar.TypeLink, Linkname: "bin/busybox", Mode: 0o755}, nil)
	}
	for name, script := range map[string]string{"bin/pgrep": pgrepScript, "bin/ipcs": ipcsScript} {
		add(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(script))}, []byte(script))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// filesLayer is a layer tar of the given files (mode 0644) and
// executables (0755).
func filesLayer(t *testing.T, files map[string]string, exes map[string][]byte) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	dirs := map[string]bool{}
	all := map[string][]byte{}
	for p, content := range files {
		all[p] = []byte(content)
	}
	maps.Copy(all, exes)
	for p, content := range all {
		mode := int64(0o644)
		if _, ok := exes[p]; ok {
			mode = 0o755
		}
		for d := filepath.Dir(p); d != "." && !dirs[d]; d = filepath.Dir(d) {
			dirs[d] = true
			if err := tw.WriteHeader(&tar.Header{Name: d + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: time.Unix(1700000000, 0)}); err != nil {
				t.Fatal(err)
			}
		}
		if err := tw.WriteHeader(&tar.Header{Name: p, Typeflag: tar.TypeReg, Mode: mode, Size: int64(len(content)), ModTime: time.Unix(1700000000, 0)}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(content); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// critestRun is what a critest run reports: ginkgo's summary line's
// counts and the failed tests' names.
type critestRun struct {
	passed, failed, skipped int
	failures                []string
	out                     string
}

var (
	critestSummary = regexp.MustCompile(`Ran \d+ of \d+ Specs.*\n.*?(\d+) Passed \| (\d+) Failed \| \d+ Pending \| (\d+) Skipped`)
	critestFail    = regexp.MustCompile(`(?m)^\s*\[FAIL\] (.*)$`)
)

// runCritest runs critest as the session's user against its lodged,
// focused on focus, skipping the skips, and returns its counts.
func runCritest(t *testing.T, s *session, focus string, skips []string, limit time.Duration) critestRun {
	t.Helper()
	critest := clientBinary(t, "critest")
	ep := "unix://" + filepath.Join(s.runDir, "cri.sock")
	args := []string{
		"--runtime-endpoint", ep, "--image-endpoint", ep,
		"--ginkgo.focus", focus, "--ginkgo.no-color", "--ginkgo.timeout", limit.String(),
	}
	for _, sk := range skips {
		args = append(args, "--ginkgo.skip", sk)
	}
	ctx, cancel := context.WithTimeout(t.Context(), limit+time.Minute)
	defer cancel()
	cmd := s.command(ctx, critest, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	t.Logf("critest ran for %s (%v)", time.Since(start).Round(time.Second), err)
	r := critestRun{out: out.String()}
	m := critestSummary.FindStringSubmatch(r.out)
	if m == nil {
		t.Fatalf("critest printed no summary (%v):\n%s", err, tail(r.out, 8000))
	}
	fmt.Sscan(m[1], &r.passed)
	fmt.Sscan(m[2], &r.failed)
	fmt.Sscan(m[3], &r.skipped)
	for _, f := range critestFail.FindAllStringSubmatch(r.out, -1) {
		r.failures = append(r.failures, f[1])
	}
	if dir := os.Getenv("LODGE_CRITEST_OUT"); dir != "" {
		_ = os.WriteFile(filepath.Join(dir, "critest.log"), out.Bytes(), 0o644)
	}
	return r
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

// critestSkipList is the skip list's expressions.
func critestSkipList() []string {
	var out []string
	for _, s := range append(critestSkips, critestSkipsFull...) {
		out = append(out, s.test)
	}
	return out
}

// TestCritestConformance runs the CRI validation suite the Kubernetes
// project runs against containerd and CRI-O — critest's [Conformance]
// tests — against rootless lodged, with its images served from a
// registry on 127.0.0.1 made from busybox-static. Every test passes but
// those critestSkips names with the reason. LODGE_CRITEST_FOCUS widens it
// (make conformance runs the whole suite).
func TestCritestConformance(t *testing.T) {
	docker := needDocker(t)
	s := newSession(t, lookupUser(t, "LODGE_TEST_USER"))
	reg := startRegistry(t, "", "")
	pushCritestImages(t, reg)
	proxy, ca := startRegistryProxy(t, reg, s.home, critestRegistries)
	// lodged reaches critest's registries through the proxy, and trusts
	// its certificates: the images keep the names critest gives them.
	s.extraEnv = append(s.extraEnv, "HTTPS_PROXY="+proxy, "https_proxy="+proxy, "SSL_CERT_FILE="+ca)
	s.start()
	s.loadBusybox(docker)
	t.Cleanup(func() {
		if ids := strings.Fields(s.run(docker, "ps", "-aq").stdout); len(ids) > 0 {
			s.run(docker, append([]string{"rm", "-f"}, ids...)...)
		}
	})
	focus, limit := os.Getenv("LODGE_CRITEST_FOCUS"), 30*time.Minute
	if focus == "" {
		focus, limit = `\[Conformance\]`, 8*time.Minute
	}
	r := runCritest(t, s, focus, critestSkipList(), limit)
	t.Logf("critest: %d passed, %d failed, %d skipped", r.passed, r.failed, r.skipped)
	if r.failed > 0 || r.passed == 0 {
		t.Errorf("critest failed %d tests:\n  %s\n\n%s", r.failed, strings.Join(r.failures, "\n  "), tail(r.out, 30000))
	}
}

// critestRegistries are the registries critest's images come from.
var critestRegistries = []string{"registry.k8s.io", "gcr.io", "k8s.gcr.io"}

// startRegistryProxy is an HTTPS proxy on 127.0.0.1 that answers CONNECTs
// to hosts (port 443) itself, with a certificate for them signed by a CA of
// its own, and forwards what comes through to the plain registry at reg.
// It returns the proxy's URL and the CA's PEM file, written in dir.
func startRegistryProxy(t *testing.T, reg, dir string, hosts []string) (proxyURL, caFile string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "lodge critest CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: hosts[0]}, DNSNames: hosts,
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, caCert, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile = filepath.Join(dir, "critest-ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644); err != nil {
		t.Fatal(err)
	}
	tlsCfg := &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{leafDER}, PrivateKey: leafKey}}}
	target, err := url.Parse("http://" + reg)
	if err != nil {
		t.Fatal(err)
	}
	inner := &connListener{conns: make(chan net.Conn), done: make(chan struct{})}
	innerSrv := &http.Server{Handler: httputil.NewSingleHostReverseProxy(target)}
	go innerSrv.Serve(inner)
	allowed := map[string]bool{}
	for _, h := range hosts {
		allowed[h+":443"] = true
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect || !allowed[r.Host] {
			http.Error(w, "this proxy serves only critest's registries", http.StatusForbidden)
			return
		}
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		if _, err := io.WriteString(conn, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
			conn.Close()
			return
		}
		select {
		case inner.conns <- tls.Server(conn, tlsCfg):
		case <-inner.done:
			conn.Close()
		}
	})}
	go srv.Serve(l)
	t.Cleanup(func() {
		srv.Close()
		inner.Close()
		innerSrv.Close()
	})
	return "http://" + l.Addr().String(), caFile
}

// connListener hands the proxy's tunnelled connections to an http.Server.
type connListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func (c *connListener) Accept() (net.Conn, error) {
	select {
	case conn := <-c.conns:
		return conn, nil
	case <-c.done:
		return nil, net.ErrClosed
	}
}

func (c *connListener) Close() error {
	c.once.Do(func() { close(c.done) })
	return nil
}

func (c *connListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }
