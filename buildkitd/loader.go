package buildkitd

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
)

// SocketLoader loads images through lodged's own API socket (POST
// /images/load), so the helper never opens lodge's image store itself: one
// writer, lodged, keeps it consistent. The helper is uid 0 of lodged's user
// namespace, which is the user to the socket's peer check.
type SocketLoader struct {
	Socket string
}

var _ Loader = (*SocketLoader)(nil)

// Load posts the archive and reads lodged's JSON progress to the end; an
// "error" message in it fails the load.
func (l *SocketLoader) Load(ctx context.Context, archive io.Reader) error {
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", l.Socket)
	}}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://lodge/images/load?quiet=1", archive)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-tar")
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("loading the image into lodged: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		var m struct{ Message string }
		if json.Unmarshal(b, &m) == nil && m.Message != "" {
			return fmt.Errorf("lodged refused the image: %s", m.Message)
		}
		return fmt.Errorf("lodged refused the image: %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var m struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(sc.Bytes(), &m) == nil && m.Error != "" {
			return errors.New("lodged refused the image: " + m.Error)
		}
	}
	return sc.Err()
}
