package build

import (
	"bytes"
	"fmt"
	"io"
	"sync"
)

// printer keeps each step's lines together when stages run at the same
// time: one step at a time streams to out (RUN output as it comes), the
// others buffer until it is done, then the oldest takes over.
type printer struct {
	mu    sync.Mutex
	out   io.Writer
	owner *stepOut
	queue []*stepOut
}

func newPrinter(out io.Writer, quiet bool) *printer {
	if quiet || out == nil {
		out = io.Discard
	}
	return &printer{out: out}
}

// stepOut is one step's share of the output. Close it when the step ends.
type stepOut struct {
	p    *printer
	buf  bytes.Buffer
	done bool
}

func (p *printer) step() *stepOut {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := &stepOut{p: p}
	if p.owner == nil {
		p.owner = s
	} else {
		p.queue = append(p.queue, s)
	}
	return s
}

// Printf writes lines that are not a step's (the end of a build).
func (p *printer) Printf(format string, a ...any) {
	s := p.step()
	fmt.Fprintf(s, format, a...)
	s.Close()
}

func (s *stepOut) Write(b []byte) (int, error) {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	if s.p.owner == s {
		// A client that went away shows as a cancelled context; the
		// build does not fail on output.
		_, _ = s.p.out.Write(b)
	} else {
		s.buf.Write(b)
	}
	return len(b), nil
}

func (s *stepOut) Printf(format string, a ...any) {
	fmt.Fprintf(s, format, a...)
}

func (s *stepOut) Close() {
	p := s.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if s.done {
		return
	}
	s.done = true
	if p.owner != s {
		return
	}
	p.owner = nil
	for len(p.queue) > 0 {
		next := p.queue[0]
		p.queue = p.queue[1:]
		_, _ = p.out.Write(next.buf.Bytes())
		next.buf.Reset()
		if !next.done {
			p.owner = next
			return
		}
	}
}
