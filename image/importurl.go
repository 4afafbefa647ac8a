package image

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/lodge-containers/lodge/errdefs"
	"github.com/lodge-containers/lodge/version"
)

// OpenImportURL downloads what `docker import URL` names (http:// when
// it names no scheme, as in Docker), reporting the download on p. The
// caller closes the body it returns.
func OpenImportURL(ctx context.Context, src string, p ProgressSink) (io.ReadCloser, error) {
	p = orDiscard(p)
	if !strings.Contains(src, "://") {
		src = "http://" + src
	}
	u, err := url.Parse(src)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errdefs.InvalidArgumentf("import source %q: lodge imports from -, or from an http(s) URL", src)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), http.NoBody)
	if err != nil {
		return nil, errdefs.InvalidArgumentf("import source %q: %v", src, err)
	}
	req.Header.Set("User-Agent", "lodge/"+version.Version)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("downloading %s: %w", u, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		resp.Body.Close()
		return nil, errdefs.InvalidArgumentf("%s returned error: %s", u, resp.Status)
	}
	p.Status("", "Downloading from "+u.String())
	return &progressBody{ReadCloser: resp.Body, p: p, total: resp.ContentLength}, nil
}

// progressBody reports how much of a download was read, at most every
// MiB.
type progressBody struct {
	io.ReadCloser
	p           ProgressSink
	total, read int64
	said        int64
}

func (b *progressBody) Read(buf []byte) (int, error) {
	n, err := b.ReadCloser.Read(buf)
	b.read += int64(n)
	if b.read-b.said >= 1<<20 || (err == io.EOF && b.read != b.said) {
		b.said = b.read
		b.p.Bytes("", "Importing", b.read, max(b.total, 0))
	}
	return n, err
}
