package shim

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"
)

// logEntry is a json-file line, as encoding/json writes it.
type logEntry struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
}

// jsonLine is a json-file line as encoding/json writes it.
func jsonLine(t testing.TB, stream string, line []byte, at time.Time) string {
	b, err := json.Marshal(logEntry{Log: string(line), Stream: stream, Time: at})
	if err != nil {
		t.Fatal(err)
	}
	return string(b) + "\n"
}

// TestJSONLineLikeEncodingJSON: the hand-written json-file encoder gives
// what encoding/json gives, for hostile lines (every escape, bad UTF-8,
// line separators) and for random bytes.
func TestJSONLineLikeEncodingJSON(t *testing.T) {
	at := time.Date(2026, 12, 1, 14, 3, 4, 50607080, time.UTC)
	lines := []string{
		"", "plain\n", "tab\there \"quoted\" back\\slash\r\n", "\x00\x01\x07\b\f\x1b\x1f\x7f",
		"<script>&amp;</script>", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\xb3", "bad \xff\xfe utf8 \xc3",
		"cut \xe2\x82", "sep \u2028 and \u2029 end", "\xed\xa0\x80 surrogate", "\xf4\x90\x80\x80 too big",
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 2000; i++ {
		b := make([]byte, rng.IntN(64))
		for j := range b {
			b[j] = byte(rng.IntN(256))
		}
		lines = append(lines, string(b))
	}
	for _, at := range []time.Time{at, at.Truncate(time.Second), time.Unix(0, 1).UTC()} {
		for _, l := range lines {
			want := jsonLine(t, "stderr", []byte(l), at)
			if got := string(appendJSONLine(nil, "stderr", []byte(l), at)); got != want {
				t.Fatalf("line %q:\n got %s\nwant %s", l, got, want)
			}
		}
	}
}

// BenchmarkJSONLine: what one logged line costs, through encoding/json
// (as before) and through appendJSONLine.
func BenchmarkJSONLine(b *testing.B) {
	line := []byte("2026-12-01 14:03:04 INFO a typical line of a server's log, with \"quotes\" & a tab\there\n")
	at := time.Now().UTC()
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			out, _ := json.Marshal(logEntry{Log: string(line), Stream: "stdout", Time: at})
			_ = append(out, '\n')
		}
	})
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf = appendJSONLine(buf[:0], "stdout", line, at)
		}
	})
}
