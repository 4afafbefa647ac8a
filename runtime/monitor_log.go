package runtime

import (
	"bytes"
	"encoding/json"
	"os"
	"sync"
	"time"
)

// jsonLog writes Docker's json-file log format: one JSON object per line of
// output, {"log": "...\n", "stream": "stdout", "time": "..."}. Lines longer
// than maxLine are split, as Docker does, so memory stays bounded.
type jsonLog struct {
	mu      sync.Mutex
	f       *os.File
	partial map[string]*bytes.Buffer
}

const maxLine = 16 * 1024

func openJSONLog(path string) (*jsonLog, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	return &jsonLog{f: f, partial: map[string]*bytes.Buffer{}}, nil
}

type logEntry struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
}

// write logs p from stream, emitting every complete line.
func (l *jsonLog) write(stream string, p []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	buf := l.partial[stream]
	if buf == nil {
		buf = &bytes.Buffer{}
		l.partial[stream] = buf
	}
	buf.Write(p)
	for {
		b := buf.Bytes()
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			if len(b) >= maxLine {
				l.emit(stream, b[:maxLine])
				buf.Next(maxLine)
				continue
			}
			return
		}
		l.emit(stream, b[:i+1])
		buf.Next(i + 1)
	}
}

// flush logs what is left without a newline, at exit.
func (l *jsonLog) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for stream, buf := range l.partial {
		if buf.Len() > 0 {
			l.emit(stream, buf.Bytes())
			buf.Reset()
		}
	}
	l.f.Sync()
}

func (l *jsonLog) emit(stream string, line []byte) {
	b, _ := json.Marshal(logEntry{Log: string(line), Stream: stream, Time: time.Now().UTC()})
	l.f.Write(append(b, '\n'))
}

func (l *jsonLog) close() error { l.flush(); return l.f.Close() }
