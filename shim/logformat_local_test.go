package shim

import (
	"bytes"
	"encoding/hex"
	"testing"
	"time"
)

func TestLocalFormatRoundTrip(t *testing.T) {
	at := time.Unix(1700000000, 123456789)
	var stream []byte
	for _, in := range []struct{ stream, line string }{{"stdout", "hello\n"}, {"stderr", "no newline"}, {"stdout", "\n"}} {
		stream = append(stream, EncodeLocal(in.stream, []byte(in.line), at)...)
	}
	var got []string
	for len(stream) > 0 {
		e, n, err := DecodeLocal(stream)
		if err != nil || n == 0 {
			t.Fatalf("decode: %v (n=%d)", err, n)
		}
		if !e.Time.Equal(at) {
			t.Errorf("time %v", e.Time)
		}
		got = append(got, e.Stream+":"+string(e.Line))
		stream = stream[n:]
	}
	want := []string{"stdout:hello\n", "stderr:no newline", "stdout:\n"}
	if len(got) != len(want) {
		t.Fatalf("got %q", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("entry %d: %q, want %q", i, got[i], want[i])
		}
	}
}

// TestLocalFormatBytes pins the encoding to the bytes Docker's local
// driver writes for the same message (a protobuf LogEntry between two
// big-endian lengths), so either can read the other's files.
func TestLocalFormatBytes(t *testing.T) {
	b := EncodeLocal("stdout", []byte("hi\n"), time.Unix(0, 1))
	// len 14 | 0a 06 "stdout" | 10 01 | 1a 02 "hi" | len 14
	want := "0000000e" + "0a06" + hex.EncodeToString([]byte("stdout")) + "1001" + "1a02" + hex.EncodeToString([]byte("hi")) + "0000000e"
	if hex.EncodeToString(b) != want {
		t.Errorf("got %x\nwant %s", b, want)
	}
}

func TestLocalFormatPartialAndGarbage(t *testing.T) {
	full := EncodeLocal("stdout", []byte("abc\n"), time.Now())
	for i := 0; i < len(full); i++ {
		if _, n, err := DecodeLocal(full[:i]); n != 0 || err != nil {
			t.Fatalf("a frame cut at %d: n=%d err=%v", i, n, err)
		}
	}
	bad := append([]byte{}, full...)
	bad[len(bad)-1] ^= 1
	if _, _, err := DecodeLocal(bad); err == nil {
		t.Error("mismatched lengths accepted")
	}
	if _, _, err := DecodeLocal(bytes.Repeat([]byte{0xff}, 64)); err == nil {
		t.Error("a huge length accepted")
	}
}
