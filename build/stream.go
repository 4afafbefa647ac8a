package build

import (
	"bytes"
	"context"
	"io"
	"os"
	"sync"

	"github.com/lodge-containers/lodge/errdefs"
)

// contextStream unpacks a build's context while the build runs. The
// Dockerfile is read as soon as its entry has arrived, so the steps that
// need nothing of the context (FROM, RUN, ENV, a stage that only copies
// from another) start while the client is still sending it; what does
// need it (COPY and ADD from the context, RUN --mount from it) waits for
// ready. Docker's classic builder reads the whole context first: with a
// large one, nothing happens until it has all arrived.
//
// The docker CLI sends its context in the order of a walk of the
// directory, so a Dockerfile at the top of the context comes early. One
// that comes last (docker build -f from outside the context) is only
// waited for, as before.
type contextStream struct {
	bc   *buildContext
	name string // the Dockerfile asked for, a clean relative name

	early chan []byte   // the Dockerfile, once its entry is written in full
	done  chan struct{} // the unpacking ended; err says how
	err   error

	// What the plan was made from, and how the context was found once
	// ready looked.
	df          []byte
	dfName      string
	fromEarly   bool
	once        sync.Once
	errAtFinish error
}

// startContext unpacks r into dir on a goroutine. cancel is called with
// the unpacking's error, so that a build that cannot get its context
// stops.
func startContext(ctx context.Context, r io.Reader, dir, dockerfile string, cancel context.CancelCauseFunc) *contextStream {
	cs := &contextStream{bc: newBuildContext(dir), early: make(chan []byte, 1), done: make(chan struct{})}
	if name, err := cleanEntryName(dockerfile); err == nil && name != "." {
		cs.name = name
	}
	sent := false
	fileDone := func(root *os.Root, name string) {
		if sent || cs.name == "" || name != cs.name {
			return
		}
		// Read through the root, as every write is: a later entry that
		// replaces it is caught by finish.
		b, err := root.ReadFile(name)
		if err != nil || len(bytes.TrimSpace(b)) == 0 {
			return // the whole context, then the usual reading, says what is wrong
		}
		sent = true
		cs.early <- b
	}
	go func() {
		defer close(cs.done)
		cs.err = unpackInto(ctx, r, cs.bc, dockerfile, fileDone)
		if cs.err != nil {
			cancel(cs.err)
		}
	}()
	return cs
}

// dockerfile is the Dockerfile and the name it was found under: as soon
// as its entry has arrived, or once the whole context has.
func (cs *contextStream) dockerfile(ctx context.Context, asked string) ([]byte, string, error) {
	select {
	case b := <-cs.early:
		cs.df, cs.dfName, cs.fromEarly = b, cs.name, true
		return b, cs.name, nil
	case <-cs.done:
	case <-ctx.Done():
		return nil, "", context.Cause(ctx)
	}
	if cs.err != nil {
		return nil, "", cs.err
	}
	b, name, err := cs.bc.readDockerfile(asked)
	cs.df, cs.dfName = b, name
	return b, name, err
}

// ready waits for the whole context, then checks it and applies the
// ignore file, once: after it returns nil the context on disk is what
// COPY may read.
func (cs *contextStream) ready(ctx context.Context) error {
	select {
	case <-cs.done:
	case <-ctx.Done():
		if err := cs.failed(); err != nil {
			return err
		}
		return context.Cause(ctx)
	}
	cs.once.Do(func() { cs.errAtFinish = cs.finish() })
	return cs.errAtFinish
}

func (cs *contextStream) finish() error {
	if cs.err != nil {
		return cs.err
	}
	name := cs.dfName
	if cs.fromEarly {
		b, _, err := cs.bc.readDockerfile(name)
		if err != nil || !bytes.Equal(b, cs.df) {
			return errdefs.InvalidArgumentf("invalid build context: the Dockerfile %s changed after it was read (a later entry of the context replaced it)", name)
		}
	}
	patterns, err := cs.bc.ignorePatterns(name)
	if err != nil {
		return err
	}
	return cs.bc.applyIgnore(patterns)
}

// failed is the unpacking's error if it has ended with one.
func (cs *contextStream) failed() error {
	select {
	case <-cs.done:
		return cs.err
	default:
		return nil
	}
}

// drain waits until the unpacking has ended: the request's body is read
// to its end (or the build's context ended) before the build answers, so
// that a client still sending hears the answer rather than a reset.
func (cs *contextStream) drain() { <-cs.done }
