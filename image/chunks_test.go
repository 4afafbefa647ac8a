package image

import (
	"bytes"
	"errors"
	"io"
	"math/rand"
	"testing"
	"testing/iotest"
)

// The reader gets every byte, in order, whatever sizes its reads and the
// source's come in, and then io.EOF.
func TestChunkReaderPassesEverything(t *testing.T) {
	want := make([]byte, 3*chunkSize+1234)
	rand.New(rand.NewSource(1)).Read(want)
	for _, src := range []io.Reader{
		bytes.NewReader(want),
		iotest.OneByteReader(bytes.NewReader(want[:5000])),
		iotest.HalfReader(bytes.NewReader(want)),
	} {
		c := newChunkReader(src)
		got, err := io.ReadAll(iotest.HalfReader(c))
		if err != nil {
			t.Fatal(err)
		}
		if n := len(got); !bytes.Equal(got, want[:n]) || n != 5000 && n != len(want) {
			t.Fatalf("read %d bytes, not what was written", n)
		}
		if n, err := c.Read(make([]byte, 10)); n != 0 || err != io.EOF {
			t.Fatalf("after the end: %d, %v", n, err)
		}
		c.stopReading()
	}
}

// A source's error reaches the reader after the bytes read before it.
func TestChunkReaderPassesTheSourcesError(t *testing.T) {
	boom := errors.New("boom")
	src := io.MultiReader(bytes.NewReader(make([]byte, chunkSize+10)), iotest.ErrReader(boom))
	c := newChunkReader(src)
	got, err := io.ReadAll(c)
	if !errors.Is(err, boom) || len(got) != chunkSize+10 {
		t.Fatalf("read %d bytes, err %v; want %d and boom", len(got), err, chunkSize+10)
	}
	c.stopReading()
}

// A reader that stops early (a hostile tar refused) leaves no goroutine
// behind: stopReading returns once the source's writer is gone.
func TestChunkReaderStopsEarly(t *testing.T) {
	pr, pw := io.Pipe()
	go func() {
		for {
			if _, err := pw.Write(make([]byte, 32<<10)); err != nil {
				return
			}
		}
	}()
	c := newChunkReader(pr)
	if _, err := io.ReadFull(c, make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	pr.Close()
	c.stopReading() // hangs (the test times out) if the goroutine stays
}
