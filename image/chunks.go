package image

import (
	"errors"
	"io"
	"sync"
)

// chunkSize is how much of a layer's tar the unpacker gets at a time.
const chunkSize = 256 << 10

// chunkReader reads r ahead on a goroutine of its own and hands what it
// read to its reader in chunks of up to chunkSize, two of them at most
// in flight.
//
// The unpacker that reads a layer's tar is locked to its thread, and the
// tar comes from tar-split's pipe in the pieces its reads ask for (32
// KiB): each piece woke the unpacker's thread and put it back to sleep,
// two futex calls on either side, ~3,000 times per 96 MiB. Read from a
// chunkReader, the thread waits once per chunk.
type chunkReader struct {
	full chan []byte
	free chan []byte
	stop chan struct{}
	done chan struct{} // closed when the goroutine has returned
	cur  []byte        // what is left of the chunk being read
	held []byte        // that chunk, to give back
	err  error         // why the goroutine stopped; read after full is closed
	once sync.Once
}

func newChunkReader(r io.Reader) *chunkReader {
	c := &chunkReader{
		full: make(chan []byte, 1),
		free: make(chan []byte, 2),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	c.free <- make([]byte, chunkSize)
	c.free <- make([]byte, chunkSize)
	go c.fill(r)
	return c
}

func (c *chunkReader) fill(r io.Reader) {
	defer close(c.done)
	defer close(c.full)
	for {
		var b []byte
		select {
		case b = <-c.free:
		case <-c.stop:
			return
		}
		n, err := io.ReadFull(r, b)
		if n > 0 {
			select {
			case c.full <- b[:n]:
			case <-c.stop:
				return
			}
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = io.EOF // a last chunk shorter than the others
		}
		if err != nil {
			c.err = err
			return
		}
	}
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if len(c.cur) == 0 {
		if c.held != nil {
			c.free <- c.held[:cap(c.held)]
			c.held = nil
		}
		b, ok := <-c.full
		if !ok {
			return 0, c.err
		}
		c.cur, c.held = b, b
	}
	n := copy(p, c.cur)
	c.cur = c.cur[n:]
	return n, nil
}

// stopReading makes the goroutine stop and waits for it; r must return
// from a read it is blocked in (its writer closed it) for that.
func (c *chunkReader) stopReading() {
	c.once.Do(func() { close(c.stop) })
	<-c.done
}
