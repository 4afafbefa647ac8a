// Command attachprobe drives attach and exec streams through the Go client
// (github.com/moby/moby/client) the way docker-py and other API clients do,
// without the docker CLI's own detach handling in between: the daemon must
// see the detach keys itself. It prints one line per check for the
// end-to-end test to judge.
//
//	attachprobe attach CONTAINER KEYS   attach, send KEYS ("" for ctrl-p,ctrl-q)
//	attachprobe exec CONTAINER KEYS     exec -it sh, then KEYS
//	attachprobe frames CONTAINER        exec streams framed by the start's Tty
package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/moby/moby/client"
)

func main() {
	if len(os.Args) < 3 {
		fail("usage: attachprobe attach|exec|frames CONTAINER [KEYS]")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := client.New(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		fail(err.Error())
	}
	keys := ""
	if len(os.Args) > 3 {
		keys = os.Args[3]
	}
	switch os.Args[1] {
	case "attach":
		attach(ctx, c, os.Args[2], keys)
	case "exec":
		execDetach(ctx, c, os.Args[2], keys)
	case "frames":
		frames(ctx, c, os.Args[2])
	default:
		fail("unknown check " + os.Args[1])
	}
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, msg)
	os.Exit(1)
}

// keyBytes is what the keys' spelling means, "ctrl-p,ctrl-q" by default.
func keyBytes(keys string) []byte {
	if keys == "" {
		return []byte{16, 17}
	}
	var b []byte
	for _, k := range strings.Split(keys, ",") {
		if c, ok := strings.CutPrefix(k, "ctrl-"); ok && len(c) == 1 {
			b = append(b, c[0]&0x1f)
		} else {
			b = append(b, k[0])
		}
	}
	return b
}

// detach sends a command, waits for its echo, sends the detach keys and
// reports whether the server ended the stream, and what it had sent after
// the keys.
func detach(conn io.Writer, r io.Reader, cmd, want string, keys []byte) {
	out := make(chan []byte, 64)
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		buf := make([]byte, 4096)
		for {
			n, err := r.Read(buf)
			if n > 0 {
				out <- append([]byte(nil), buf[:n]...)
			}
			if err != nil {
				return
			}
		}
	}()
	conn.Write([]byte(cmd))
	var seen bytes.Buffer
	deadline := time.After(20 * time.Second)
	for !strings.Contains(seen.String(), want) {
		select {
		case b := <-out:
			seen.Write(b)
		case <-ended:
			fail(fmt.Sprintf("stream ended before %q: %q", want, seen.String()))
		case <-deadline:
			fail(fmt.Sprintf("never saw %q: %q", want, seen.String()))
		}
	}
	conn.Write(keys)
	select {
	case <-ended:
		fmt.Println("stream ended")
	case <-time.After(10 * time.Second):
		fmt.Println("stream still open")
	}
}

func attach(ctx context.Context, c *client.Client, ctr, keys string) {
	att, err := c.ContainerAttach(ctx, ctr, client.ContainerAttachOptions{Stream: true, Stdin: true, Stdout: true, Stderr: true, DetachKeys: keys})
	if err != nil {
		fail("attach: " + err.Error())
	}
	defer att.Close()
	detach(att.Conn, att.Reader, "echo pro$((1+1))be\n", "pro2be", keyBytes(keys))
}

func execDetach(ctx context.Context, c *client.Client, ctr, keys string) {
	ex, err := c.ExecCreate(ctx, ctr, client.ExecCreateOptions{TTY: true, AttachStdin: true, AttachStdout: true, AttachStderr: true, DetachKeys: keys, Cmd: []string{"sh"}})
	if err != nil {
		fail("exec create: " + err.Error())
	}
	att, err := c.ExecAttach(ctx, ex.ID, client.ExecAttachOptions{TTY: true})
	if err != nil {
		fail("exec attach: " + err.Error())
	}
	detach(att.Conn, att.Reader, "echo ex$((1+2))ec\n", "ex3ec", keyBytes(keys))
	att.Close()
	time.Sleep(time.Second)
	insp, err := c.ExecInspect(ctx, ex.ID, client.ExecInspectOptions{})
	if err != nil {
		fail("exec inspect: " + err.Error())
	}
	fmt.Printf("exec running %v\n", insp.Running)
}

// frames runs `echo hi` created without a tty and started with one (raw
// output), then created with a tty and started without one (framed).
func frames(ctx context.Context, c *client.Client, ctr string) {
	for _, tc := range []struct{ create, start bool }{{false, true}, {true, false}} {
		ex, err := c.ExecCreate(ctx, ctr, client.ExecCreateOptions{TTY: tc.create, AttachStdout: true, AttachStderr: true, Cmd: []string{"echo", "hi"}})
		if err != nil {
			fail("exec create: " + err.Error())
		}
		att, err := c.ExecAttach(ctx, ex.ID, client.ExecAttachOptions{TTY: tc.start})
		if err != nil {
			fail("exec attach: " + err.Error())
		}
		b, _ := io.ReadAll(att.Reader)
		att.Close()
		fmt.Printf("create tty %v start tty %v: %q\n", tc.create, tc.start, b)
	}
}
