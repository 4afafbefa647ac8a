package shim

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// jsonLog writes Docker's json-file log format: one JSON object per line of
// output, {"log": "...\n", "stream": "stdout", "time": "..."}. Lines longer
// than maxLine are split, as Docker does, so memory stays bounded. With a
// maximum size it rotates as Docker's max-size/max-file do: the full file
// becomes path.1 (path.1 becomes path.2, ...) and at most maxFiles files
// are kept, the live one included.
//
// With local set it writes Docker's local driver format instead (see
// encodeLocal), with cri the CRI log format (logformat_cri.go); with the
// none driver it writes nothing.
type jsonLog struct {
	mu       sync.Mutex
	f        *os.File
	path     string
	size     int64
	maxSize  int64
	maxFiles int
	partial  map[string]*bytes.Buffer
	local    bool
	cri      bool
	none     bool
	closed   bool
}

// Log formats of MonitorConfig.LogFormat.
const (
	LogLocal = "local"
	LogNone  = "none"
	// LogK8sFile is the CRI log format, at a path the config names.
	LogK8sFile = "k8s-file"
)

// openLog opens the log a monitor's config asks for.
func openLog(cfg MonitorConfig) (*jsonLog, error) {
	if cfg.LogFormat == LogNone {
		f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		if err != nil {
			return nil, err
		}
		return &jsonLog{f: f, path: os.DevNull, maxFiles: 1, partial: map[string]*bytes.Buffer{}, none: true}, nil
	}
	// The local driver's log has a directory of its own; a k8s-file log
	// goes where the kubelet says, in a directory it may not have made.
	if cfg.LogFormat == LogLocal || cfg.LogFormat == LogK8sFile {
		if err := os.MkdirAll(filepath.Dir(cfg.LogPath), 0o700); err != nil {
			return nil, err
		}
	}
	l, err := openJSONLog(cfg.LogPath, cfg.LogMaxSize, cfg.LogMaxFiles)
	if err != nil {
		return nil, err
	}
	l.local = cfg.LogFormat == LogLocal
	l.cri = cfg.LogFormat == LogK8sFile
	return l, nil
}

const maxLine = 16 * 1024

func openJSONLog(path string, maxSize int64, maxFiles int) (*jsonLog, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	var size int64
	if fi, err := f.Stat(); err == nil {
		size = fi.Size()
	}
	if maxFiles < 1 {
		maxFiles = 1
	}
	return &jsonLog{f: f, path: path, size: size, maxSize: maxSize, maxFiles: maxFiles, partial: map[string]*bytes.Buffer{}}, nil
}

// RotatedLogs lists a json-file log's files oldest first: path.N ... path.1,
// then path itself, as rotation leaves them.
func RotatedLogs(path string) []string {
	var old []string
	for i := 1; ; i++ {
		p := path + "." + strconv.Itoa(i)
		if _, err := os.Stat(p); err != nil {
			break
		}
		old = append([]string{p}, old...)
	}
	return append(old, path)
}

// rotate starts a new file: with one file kept the log starts over,
// else each older file moves one number up and the oldest falls off.
func (l *jsonLog) rotate() {
	if err := l.f.Close(); err != nil {
		warn("log:", err)
	}
	// Files not there yet (fewer than maxFiles so far) are no error.
	if l.maxFiles > 1 {
		notMissing(os.Remove(l.path + "." + strconv.Itoa(l.maxFiles-1)))
		for i := l.maxFiles - 2; i >= 1; i-- {
			notMissing(os.Rename(l.path+"."+strconv.Itoa(i), l.path+"."+strconv.Itoa(i+1)))
		}
		notMissing(os.Rename(l.path, l.path+".1"))
	} else {
		notMissing(os.Remove(l.path))
	}
	f, err := os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_TRUNC, 0o600)
	if err != nil {
		// Nowhere to write: drop output rather than stop the container.
		f, _ = os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	}
	l.f, l.size = f, 0
}

// notMissing warns of err unless it says a file was not there.
func notMissing(err error) {
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		warn("log rotation:", err)
	}
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
	if l.cri {
		now := time.Now()
		criRecords(p, func(tag byte, content []byte) {
			l.put(AppendCRI(nil, now, stream, tag, content))
		})
		return
	}
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
	// No fsync, as Docker's json-file: readers see the page cache, and it
	// held up every exit (and so every wait) behind the disk.
}

func (l *jsonLog) emit(stream string, line []byte) {
	var b []byte
	if l.local {
		b = EncodeLocal(stream, line, time.Now())
	} else {
		b, _ = json.Marshal(logEntry{Log: string(line), Stream: stream, Time: time.Now().UTC()})
		b = append(b, '\n')
	}
	l.put(b)
}

// put writes one record, rotating first if it would not fit.
func (l *jsonLog) put(b []byte) {
	if l.maxSize > 0 && l.size > 0 && l.size+int64(len(b)) > l.maxSize {
		l.rotate()
	}
	n, _ := l.f.Write(b)
	l.size += int64(n)
}

func (l *jsonLog) close() error {
	l.flush()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	return l.f.Close()
}

// reopen closes the log's file and opens the file at its path again (or
// anew), for a kubelet that renamed it to rotate it. Lines not complete
// yet stay held and go to the new file. On an error the old file stays.
func (l *jsonLog) reopen() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errors.New("container is not running")
	}
	if l.none {
		return nil
	}
	f, err := os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	if err := l.f.Close(); err != nil {
		warn("log:", err)
	}
	l.f, l.size = f, 0
	if fi, err := f.Stat(); err == nil {
		l.size = fi.Size()
	}
	return nil
}

// CheckLog opens the log cfg names and closes it again: an error says the
// monitor could not write it.
func CheckLog(cfg MonitorConfig) error {
	l, err := openLog(cfg)
	if err != nil {
		return err
	}
	return l.f.Close()
}
