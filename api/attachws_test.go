package api

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// TestDemuxWriterSplitFrames: the payloads come out whole whatever the
// writes cut: headers and payloads split across writes, several frames in
// one write, an empty frame.
func TestDemuxWriterSplitFrames(t *testing.T) {
	frame := func(stream byte, payload string) []byte {
		h := make([]byte, 8)
		h[0] = stream
		binary.BigEndian.PutUint32(h[4:], uint32(len(payload)))
		return append(h, payload...)
	}
	var in []byte
	in = append(in, frame(1, "hello ")...)
	in = append(in, frame(2, "")...)
	in = append(in, frame(2, "world")...)
	in = append(in, frame(1, "\n")...)
	for cut := 1; cut <= len(in); cut++ {
		var out bytes.Buffer
		d := &demuxWriter{w: &out}
		for rest := in; len(rest) > 0; {
			n := min(cut, len(rest))
			if w, err := d.Write(rest[:n]); err != nil || w != n {
				t.Fatalf("cut %d: Write = %d, %v", cut, w, err)
			}
			rest = rest[n:]
		}
		if out.String() != "hello world\n" {
			t.Errorf("writes of %d bytes: %q", cut, out.String())
		}
	}
}
