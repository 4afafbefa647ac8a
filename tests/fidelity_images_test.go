package tests

import (
	"archive/tar"
	"encoding/json"
	"io"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"
)

// TestFidelityImageFilters: docker images' reference filter shows only
// the matching names of an image; until, since and dangling work on the
// images' creation times and names, and bad values are refused.
func TestFidelityImageFilters(t *testing.T) {
	s, docker := containerSession(t)
	for _, tag := range []string{"fid/a:1", "fid/a:2", "other:x"} {
		s.must(docker, "tag", "busybox", tag)
	}
	out := s.must(docker, "images", "--filter", "reference=fid/*", "--format", "{{.Repository}}:{{.Tag}}").stdout
	if lines := sortedLines(out); strings.Join(lines, " ") != "fid/a:1 fid/a:2" {
		t.Errorf("images --filter reference=fid/*: %q", out)
	}
	q := url.QueryEscape(`{"reference":["fid/a:2"]}`)
	code, body := s.apiCall(t, "GET", "/v1.51/images/json?filters="+q, "", "")
	var list []struct{ RepoTags []string }
	if code != 200 || json.Unmarshal([]byte(body), &list) != nil || len(list) != 1 || strings.Join(list[0].RepoTags, " ") != "fid/a:2" {
		t.Errorf("GET /images/json reference=fid/a:2: %d %s", code, body)
	}

	// A committed image is created now: until=10m leaves it out, a
	// time in the future takes it in, since=busybox takes it in.
	s.must(docker, "run", "--name", "fresh", "busybox", "touch", "/new")
	s.must(docker, "commit", "fresh", "fid/fresh:1")
	s.must(docker, "rm", "fresh")
	if out := s.must(docker, "images", "--filter", "until=10m", "--format", "{{.Repository}}").stdout; strings.Contains(out, "fid/fresh") {
		t.Errorf("until=10m lists a fresh image:\n%s", out)
	}
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	if out := s.must(docker, "images", "--filter", "until="+future, "--format", "{{.Repository}}").stdout; !strings.Contains(out, "fid/fresh") {
		t.Errorf("until=%s leaves the fresh image out:\n%s", future, out)
	}
	if out := s.must(docker, "images", "--filter", "since=busybox", "--format", "{{.Repository}}").stdout; strings.TrimSpace(out) != "fid/fresh" {
		t.Errorf("since=busybox:\n%s", out)
	}
	if r := s.run(docker, "images", "--filter", "until=whenever"); r.code == 0 || !strings.Contains(r.stderr, "whenever") {
		t.Errorf("a bad until: %s", r)
	}
	if r := s.run(docker, "images", "--filter", "dangling=maybe"); r.code == 0 || !strings.Contains(r.stderr, "invalid filter 'dangling=maybe'") {
		t.Errorf("a bad dangling: %s", r)
	}
	// image prune takes until and label too: a fresh labelled image is
	// kept by until=10m and removed by its label.
	s.must(docker, "run", "--name", "lab", "busybox", "true")
	s.must(docker, "commit", "-c", "LABEL prune=me", "lab", "fid/labelled")
	s.must(docker, "rm", "lab")
	if out := s.must(docker, "image", "prune", "-a", "-f", "--filter", "until=10m", "--filter", "label=prune=me").stdout; strings.Contains(out, "fid/labelled") {
		t.Errorf("prune until=10m took a fresh image:\n%s", out)
	}
	if out := s.must(docker, "image", "prune", "-a", "-f", "--filter", "label=prune=me").stdout; !strings.Contains(out, "fid/labelled") || strings.Contains(out, "busybox") || strings.Contains(out, "fid/fresh") {
		t.Errorf("prune label=prune=me:\n%s", out)
	}
	if r := s.run(docker, "image", "prune", "-f", "--filter", "colour=red"); r.code == 0 || !strings.Contains(r.stderr, "invalid filter 'colour'") {
		t.Errorf("prune with an unknown filter: %s", r)
	}
	// A name that reads as an image ID is refused.
	if r := s.run(docker, "tag", "busybox", "sha256:abc"); r.code == 0 || !strings.Contains(r.stderr, "refusing to create an ambiguous tag using digest algorithm as name") {
		t.Errorf("docker tag busybox sha256:abc: %s", r)
	}
}

func sortedLines(s string) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	sort.Strings(out)
	return out
}

// TestFidelityImageCommitInspect: a committed image names its container,
// that container's config and its parent image, as Docker's inspect does.
func TestFidelityImageCommitInspect(t *testing.T) {
	s, docker := containerSession(t)
	id := strings.TrimSpace(s.must(docker, "run", "--name", "src", "-e", "FOO=bar", "busybox", "touch", "/made").stdout)
	if id == "" {
		id = strings.TrimSpace(s.must(docker, "inspect", "-f", "{{.Id}}", "src").stdout)
	}
	s.must(docker, "commit", "src", "fid/committed")
	parent := strings.TrimSpace(s.must(docker, "image", "inspect", "-f", "{{.Id}}", "busybox").stdout)
	code, body := s.apiCall(t, "GET", "/v1.44/images/fid/committed/json", "", "")
	var in struct {
		Container       string
		ContainerConfig struct {
			Cmd []string
			Env []string
		}
		Parent string
	}
	if code != 200 || json.Unmarshal([]byte(body), &in) != nil {
		t.Fatalf("inspect: %d %s", code, body)
	}
	if in.Container != id || strings.Join(in.ContainerConfig.Cmd, " ") != "touch /made" || !contains(in.ContainerConfig.Env, "FOO=bar") || in.Parent != parent {
		t.Errorf("committed image's Container %q, ContainerConfig %+v, Parent %q (container %s, parent %s)", in.Container, in.ContainerConfig, in.Parent, id, parent)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// TestFidelityImageSave: docker save of a repository saves all its tags;
// the archive is an OCI layout too (index.json naming each tag) and keeps
// the image's creation time; a platform that does not match is refused at
// save, inspect and import as Docker refuses it.
func TestFidelityImageSave(t *testing.T) {
	s, docker := containerSession(t)
	s.must(docker, "tag", "busybox", "fid/repo:one")
	s.must(docker, "tag", "busybox", "fid/repo:two")
	files := tarFiles(t, s.must(docker, "save", "fid/repo").stdout)
	var manifest []struct {
		Config   string
		RepoTags []string
	}
	if err := json.Unmarshal(files["manifest.json"].body, &manifest); err != nil || len(manifest) != 1 {
		t.Fatalf("manifest.json: %v %s", err, files["manifest.json"].body)
	}
	if tags := strings.Join(manifest[0].RepoTags, " "); tags != "fid/repo:one fid/repo:two" {
		t.Errorf("saved tags: %q", tags)
	}
	var index struct {
		Manifests []struct {
			Digest      string
			Annotations map[string]string
		}
	}
	if err := json.Unmarshal(files["index.json"].body, &index); err != nil || len(index.Manifests) != 2 {
		t.Fatalf("index.json: %v %s", err, files["index.json"].body)
	}
	for i, want := range []string{"one", "two"} {
		m := index.Manifests[i]
		if m.Annotations["org.opencontainers.image.ref.name"] != want || m.Annotations["io.containerd.image.name"] != "docker.io/fid/repo:"+want {
			t.Errorf("index.json manifest %d: %+v", i, m)
		}
		if _, ok := files["blobs/sha256/"+strings.TrimPrefix(m.Digest, "sha256:")]; !ok {
			t.Errorf("index.json names %s, which the archive lacks", m.Digest)
		}
	}
	created := strings.TrimSpace(s.must(docker, "image", "inspect", "-f", "{{.Created}}", "busybox").stdout)
	ct, err := time.Parse(time.RFC3339Nano, created)
	if err != nil {
		t.Fatal(err)
	}
	if got := files[manifest[0].Config].mtime; !got.Equal(ct.Truncate(time.Second)) {
		t.Errorf("config's time in the archive %v, image created %v", got, ct)
	}
	// A loaded copy of the archive is the same image, both tags on it.
	s.must(docker, "rmi", "fid/repo:one", "fid/repo:two")
	s.must(docker, "save", "-o", s.home+"/repo.tar", "busybox")
	if r := s.run(docker, "save", "--platform", "linux/arm64", "busybox"); r.code == 0 || !strings.Contains(r.stderr, "no suitable export target found for platform linux/arm64") {
		t.Errorf("save --platform linux/arm64: %s", r)
	}
	if r := s.run(docker, "image", "inspect", "--platform", "linux/arm64", "busybox"); r.code == 0 || !strings.Contains(r.stderr, "does not match the specified platform (linux/arm64)") {
		t.Errorf("image inspect --platform linux/arm64: %s", r)
	}
	// import records the platform asked for; another OS is refused.
	s.must(docker, "import", "--platform", "linux/arm64", s.home+"/repo.tar", "fid/imported")
	if arch := s.must(docker, "image", "inspect", "-f", "{{.Os}}/{{.Architecture}}", "fid/imported").stdout; arch != "linux/arm64\n" {
		t.Errorf("imported for linux/arm64: %q", arch)
	}
	if r := s.run(docker, "import", "--platform", "windows/amd64", s.home+"/repo.tar", "fid/win"); r.code == 0 || !strings.Contains(r.stderr, "operating system is not supported") {
		t.Errorf("import --platform windows/amd64: %s", r)
	}
}

type tarFile struct {
	body  []byte
	mtime time.Time
}

func tarFiles(t *testing.T, archive string) map[string]tarFile {
	t.Helper()
	out := map[string]tarFile{}
	tr := tar.NewReader(strings.NewReader(archive))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("reading the archive: %v", err)
		}
		b, _ := io.ReadAll(tr)
		out[h.Name] = tarFile{b, h.ModTime}
	}
}

// TestRmiNoPrune: docker rmi removes the untagged parents a classic
// build left under the image, and --no-prune keeps them, as in Docker.
func TestRmiNoPrune(t *testing.T) {
	s, docker := compatSession(t)
	dir := s.buildDir("noprune", map[string]string{"Dockerfile": "FROM busybox\nRUN echo a > /a\nRUN echo b > /b\n"})
	classic := inDir(dir, []string{"DOCKER_BUILDKIT=0"}, "")
	build := func(tag string) string {
		t.Helper()
		if r := s.runWith(classic, docker, "build", "-t", tag, "."); r.code != 0 {
			t.Fatalf("classic build: %s", r)
		}
		parent := strings.TrimSpace(s.must(docker, "image", "inspect", "-f", "{{.Parent}}", tag).stdout)
		if parent == "" {
			t.Fatalf("the classic build of %s left no untagged parent", tag)
		}
		return parent
	}
	parent := build("kept")
	s.must(docker, "rmi", "--no-prune", "kept")
	if r := s.run(docker, "image", "inspect", "kept"); r.code == 0 {
		t.Errorf("rmi --no-prune left the image")
	}
	if r := s.run(docker, "image", "inspect", parent); r.code != 0 {
		t.Errorf("rmi --no-prune removed the parent %s: %s", parent, r)
	}
	parent = build("pruned")
	s.must(docker, "rmi", "pruned")
	if r := s.run(docker, "image", "inspect", parent); r.code == 0 {
		t.Errorf("rmi left the untagged parent %s", parent)
	}
}
