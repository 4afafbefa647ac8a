// Command sockping is a tiny static Docker API client the end-to-end
// tests build and run inside a container: it asks the daemon behind a
// unix socket (default /var/run/docker.sock) for GET /_ping and
// GET /containers/json and prints the answers, so a test can see a
// container drive lodged through a bound socket.
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
)

func main() {
	sock := "/var/run/docker.sock"
	if len(os.Args) > 1 {
		sock = os.Args[1]
	}
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	for _, path := range []string{"/_ping", "/containers/json"} {
		resp, err := c.Get("http://docker" + path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("%s %d %s\n", path, resp.StatusCode, b)
	}
}
