package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/lodge-containers/lodge/errdefs"
)

// download fetches an ADD URL into the build's work dir. The file gets
// mode 0600 and the mtime of Last-Modified, as Docker gives it; it is
// fetched on every build, its bytes are part of the step's cache key.
func (s *stageRun) download(ctx context.Context, rawURL, checksum string) (copySource, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return copySource{}, errdefs.InvalidArgumentf("invalid URL %q: %v", rawURL, err)
	}
	name := path.Base(u.Path)
	if name == "/" || name == "." || name == "" {
		return copySource{}, errdefs.InvalidArgumentf("cannot determine filename from url: %s", rawURL)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return copySource{}, errdefs.InvalidArgumentf("invalid URL %q: %v", rawURL, err)
	}
	resp, err := s.b.httpClient().Do(req)
	if err != nil {
		return copySource{}, errdefs.Unavailablef("downloading %s: %v", rawURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		return copySource{}, errdefs.Unavailablef("downloading %s: status %s", rawURL, resp.Status)
	}
	dir, err := os.MkdirTemp(s.work, "download-")
	if err != nil {
		return copySource{}, err
	}
	host := filepath.Join(dir, "file")
	f, err := os.OpenFile(host, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return copySource{}, err
	}
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(f, h), resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return copySource{}, errdefs.Unavailablef("downloading %s: %v", rawURL, err)
	}
	if checksum != "" {
		algo, want, _ := strings.Cut(checksum, ":")
		if algo != "sha256" {
			return copySource{}, errdefs.InvalidArgumentf("unsupported checksum algorithm %q", algo)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != want {
			return copySource{}, errdefs.InvalidArgumentf("checksum of %s: got sha256:%s, expected %s", rawURL, got, checksum)
		}
	}
	mtime := time.Unix(0, 0).UTC()
	if lm := resp.Header.Get("Last-Modified"); lm != "" {
		if t, err := http.ParseTime(lm); err == nil {
			mtime = t.UTC()
		}
	}
	if err := os.Chtimes(host, mtime, mtime); err != nil {
		return copySource{}, err
	}
	fi, err := os.Lstat(host)
	if err != nil {
		return copySource{}, err
	}
	return copySource{root: dir, rel: "file", base: name, fi: fi, url: true, mtime: mtime}, nil
}

// httpClient is the client ADD downloads with.
func (b *Builder) httpClient() *http.Client {
	return &http.Client{Timeout: 30 * time.Minute}
}
