package api

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// A body that stops arriving is given up after the stall timeout, and the
// handler sees an error instead of waiting forever; a body that keeps
// coming, slower than the timeout in total, is read whole, and a response
// that takes longer than the timeout after it goes on.
func TestStalledBodyGivenUp(t *testing.T) {
	const stall = 300 * time.Millisecond
	got := make(chan string, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		guardBody(w, r, stall)
		b, err := io.ReadAll(r.Body)
		if err != nil {
			got <- "error: " + err.Error()
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		got <- fmt.Sprintf("read %d", len(b))
		// A response that outlasts the stall timeout after the body.
		// net/http cancels the request's context when its background read
		// of the connection fails, as a deadline left armed makes it.
		select {
		case <-r.Context().Done():
			fmt.Fprint(w, "cancelled")
		case <-time.After(3 * stall):
			fmt.Fprint(w, "done")
		}
	}))
	defer srv.Close()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	t.Run("stalled", func(t *testing.T) {
		c := dial()
		defer c.Close()
		fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
		select {
		case s := <-got:
			if !strings.Contains(s, "sent nothing") {
				t.Errorf("handler got %q", s)
			}
		case <-time.After(10 * stall):
			t.Fatal("a stalled body is still being waited for")
		}
	})
	t.Run("slow but steady", func(t *testing.T) {
		c := dial()
		defer c.Close()
		fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n")
		for i := 0; i < 5; i++ {
			time.Sleep(stall / 2)
			c.Write([]byte("x"))
		}
		if s := <-got; s != "read 5" {
			t.Errorf("handler got %q", s)
		}
		c.SetReadDeadline(time.Now().Add(10 * stall))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("response after the body: %v", err)
		}
		b, _ := io.ReadAll(resp.Body)
		if string(b) != "done" {
			t.Errorf("response %q", b)
		}
	})
}

// A client that stops reading a streamed artifact (export, save, copy out)
// fails its Write after the stall timeout, so the stream ends; one that
// reads slowly but steadily gets all of it.
func TestStalledReaderGivenUp(t *testing.T) {
	const stall = 300 * time.Millisecond
	s := &Server{stall: stall}
	ended := make(chan error, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		out := s.stallWrites(w, w)
		chunk := make([]byte, 64<<10)
		size := 64 << 20
		if r.URL.Path == "/small" {
			size = 1 << 20
		}
		for n := 0; n < size; n += len(chunk) {
			if _, err := out.Write(chunk); err != nil {
				ended <- err
				return
			}
		}
		ended <- nil
	}))
	defer srv.Close()

	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n") // and never read
	select {
	case err := <-ended:
		if err == nil || !strings.Contains(err.Error(), "read nothing") {
			t.Errorf("stream to a client that reads nothing ended with %v", err)
		}
	case <-time.After(20 * stall):
		t.Fatal("a stream to a client that reads nothing is still being written")
	}

	resp, err := http.Get(srv.URL + "/small")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 32<<10)
	total := 0
	for {
		time.Sleep(stall / 10)
		n, err := resp.Body.Read(buf)
		total += n
		if err != nil {
			break
		}
	}
	if total != 1<<20 || <-ended != nil {
		t.Errorf("a slow reader got %d of %d bytes", total, 1<<20)
	}
}
