package logs

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/lodge-containers/lodge/errdefs"
	"github.com/lodge-containers/lodge/shim"
)

// Containers is what reading logs needs of the container service.
type Containers interface {
	// Log describes container ref's log, read under the container's
	// lock; an unknown container is errdefs.ErrNotFound.
	Log(ref string) (Source, error)
}

// Source is a container's log as its driver keeps it.
type Source struct {
	Path  string // the log's live file
	Local bool   // Docker's local format
	CRI   bool   // the CRI's format (k8s-file), else json-file
	None  bool   // the driver keeps no log ("none")
	TTY   bool   // raw output, else framed by stream
	// Attrs are the attributes Docker's json-file driver gives each line
	// (its labels, env and tag options), which Details shows.
	Attrs map[string]string
	// Running is whether the container runs now; Exited is closed at its
	// next exit, which ends a follow.
	Running bool
	Exited  <-chan struct{}
}

// Options are GET /containers/{id}/logs's.
type Options struct {
	Stdout, Stderr, Follow, Timestamps bool
	// Details puts the log's attributes and a space before each line, as
	// Docker does ("k=v,k2=v2 line"; " line" without attributes).
	Details      bool
	Tail         string // "all" or a number
	Since, Until time.Time
}

// Reader reads containers' logs. It holds no state of its own and is
// safe for concurrent use.
type Reader struct {
	containers Containers
}

// New makes the log reader over containers.
func New(containers Containers) *Reader { return &Reader{containers: containers} }

// errNone is Docker's 501 for a driver that keeps no log.
var errNone = errdefs.NotImplementedf("configured logging driver does not support reading")

type logLine struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
}

// LogsTTY reports whether a container's logs are raw (TTY) rather than
// framed, for the API's content type.
func (s *Reader) LogsTTY(ref string) (bool, error) {
	src, err := s.containers.Log(ref)
	if err != nil {
		return false, err
	}
	return src.TTY, nil
}

// CheckLogsReadable refuses, as Docker does with a 501, to read the logs
// of a container whose log driver keeps none. It is asked before any
// header goes out, so the refusal is a status.
func (s *Reader) CheckLogsReadable(ref string) error {
	src, err := s.containers.Log(ref)
	if err != nil {
		return err
	}
	if src.None {
		return errNone
	}
	return nil
}

// Logs writes a container's log to w, framed as Docker frames it (raw with
// a TTY), and with Follow keeps writing until the container stops or ctx
// ends.
func (s *Reader) Logs(ctx context.Context, ref string, opts Options, w io.Writer) error {
	src, err := s.containers.Log(ref)
	if err != nil {
		return err
	}
	if !opts.Stdout && !opts.Stderr {
		return errdefs.InvalidArgumentf("you must choose at least one stream")
	}
	tty, exitCh, running := src.TTY, src.Exited, src.Running
	if src.None {
		return errNone
	}
	path, format := src.Path, formatOf(src)
	details := attrsPrefix(src.Attrs)
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		if !opts.Follow || !running {
			return nil
		}
	} else if err != nil {
		return err
	}
	// f changes when the log is rotated while followed.
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	emit := func(l logLine) error {
		if (l.Stream == "stdout" && !opts.Stdout) || (l.Stream == "stderr" && !opts.Stderr) {
			return nil
		}
		if !opts.Since.IsZero() && l.Time.Before(opts.Since) {
			return nil
		}
		if !opts.Until.IsZero() && l.Time.After(opts.Until) {
			return nil
		}
		msg := l.Log
		if opts.Details {
			msg = details + " " + msg
		}
		if opts.Timestamps {
			msg = l.Time.UTC().Format("2006-01-02T15:04:05.000000000Z") + " " + msg
		}
		return writeLogLine(w, tty, l.Stream, msg)
	}
	flush := func() {
		if fl, ok := w.(interface{ Flush() }); ok {
			fl.Flush()
		}
	}
	var t *logTail
	if f != nil {
		// Rotated files first, oldest first, then the live one.
		lines := rotatedLines(path, format)
		t = newTail(f, format)
		live, err := t.readLines()
		if err != nil {
			return err
		}
		lines = append(lines, live...)
		if !opts.Follow || !running {
			// Nothing will complete a partial line: it is shown as it is.
			lines = append(lines, t.pending()...)
		}
		if n, err := strconv.Atoi(opts.Tail); err == nil && n >= 0 && n < len(lines) {
			lines = lines[len(lines)-n:]
		}
		for _, l := range lines {
			if err := emit(l); err != nil {
				return err
			}
		}
		flush()
	}
	if !opts.Follow || !running {
		return nil
	}
	for {
		exited := false
		select {
		case <-ctx.Done():
			return nil
		case <-exitCh:
			exited = true
		case <-time.After(100 * time.Millisecond):
		}
		if f == nil {
			if f, err = os.Open(path); err != nil {
				if exited {
					return nil
				}
				continue
			}
			t = newTail(f, format)
		}
		lines, err := t.readLines()
		if err != nil {
			return err
		}
		if rotated(f, path) {
			// The monitor rotated the log: what f holds is read; go on
			// with the new file from its start.
			if nf, err := os.Open(path); err == nil {
				f.Close()
				f = nf
				held := t.held
				t = newTail(f, format)
				t.held = held // a line cut across the rename goes on
				more, _ := t.readLines()
				lines = append(lines, more...)
			}
		}
		if exited {
			lines = append(lines, t.pending()...)
		}
		for _, l := range lines {
			if err := emit(l); err != nil {
				return nil
			}
		}
		flush()
		if exited {
			return nil
		}
	}
}

// attrsPrefix is how Docker shows a line's attributes: sorted by key,
// key=value with both query-escaped, joined by commas.
func attrsPrefix(attrs map[string]string) string {
	keys := make([]string, 0, len(attrs))
	for k := range attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	pairs := make([]string, len(keys))
	for i, k := range keys {
		pairs[i] = url.QueryEscape(k) + "=" + url.QueryEscape(attrs[k])
	}
	return strings.Join(pairs, ",")
}

// Log file formats.
const (
	formatJSON = iota
	formatLocal
	formatCRI
)

func formatOf(src Source) int {
	switch {
	case src.Local:
		return formatLocal
	case src.CRI:
		return formatCRI
	}
	return formatJSON
}

func newTail(f *os.File, format int) *logTail {
	return &logTail{r: bufio.NewReaderSize(f, 64*1024), format: format}
}

// rotatedLines reads the rotated files of the log at path, oldest first.
func rotatedLines(path string, format int) []logLine {
	var out []logLine
	files := shim.RotatedLogs(path)
	for _, p := range files[:len(files)-1] {
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		t := newTail(f, format)
		lines, _ := t.readLines()
		f.Close()
		lines = append(lines, t.pending()...)
		out = append(out, lines...)
	}
	return out
}

// rotated tells whether the file at path is no longer the one f has open.
func rotated(f *os.File, path string) bool {
	a, err1 := f.Stat()
	b, err2 := os.Stat(path)
	return err1 == nil && err2 == nil && !os.SameFile(a, b)
}

// logTail reads a json-file or CRI log line by line (or a local one
// frame by frame), keeping a partial last line (the monitor may be
// mid-write) for the next call.
type logTail struct {
	r       *bufio.Reader
	partial []byte
	format  int
	// held are a CRI log's partial records not yet followed by the rest
	// of their line, by stream.
	held map[string]*logLine
}

// readLines reads the complete lines available now.
func (t *logTail) readLines() ([]logLine, error) {
	switch t.format {
	case formatLocal:
		return t.readFrames()
	case formatCRI:
		return t.readCRI()
	}
	var out []logLine
	err := t.eachLine(func(b []byte) {
		var l logLine
		if json.Unmarshal(b, &l) == nil {
			out = append(out, l)
		}
	})
	return out, err
}

// eachLine hands f each complete line available now, keeping a last one
// without its newline for the next call.
func (t *logTail) eachLine(f func([]byte)) error {
	for {
		b, err := t.r.ReadBytes('\n')
		if err == io.EOF {
			t.partial = append(t.partial, b...)
			return nil
		}
		if err != nil {
			return err
		}
		if len(t.partial) > 0 {
			b = append(t.partial, b...)
			t.partial = nil
		}
		f(b)
	}
}

// readCRI reads the complete records of a CRI-format log available now,
// and joins the partial records of a line to its full one, as Podman's
// k8s-file reader does: docker logs shows lines, not the writer's reads.
// The joined line has its first part's time.
func (t *logTail) readCRI() ([]logLine, error) {
	var out []logLine
	err := t.eachLine(func(b []byte) {
		e, err := shim.ParseCRI(b)
		if err != nil {
			return // as a json-file line that does not parse
		}
		if t.held == nil {
			t.held = map[string]*logLine{}
		}
		h := t.held[e.Stream]
		if h == nil {
			h = &logLine{Stream: e.Stream, Time: e.Time}
		}
		h.Log += string(e.Content)
		if e.Partial {
			t.held[e.Stream] = h
			return
		}
		h.Log += "\n"
		delete(t.held, e.Stream)
		out = append(out, *h)
	})
	return out, err
}

// pending gives up the partial lines held, oldest first: the log ended
// (the container did) without the rest of them.
func (t *logTail) pending() []logLine {
	var out []logLine
	for _, h := range t.held {
		out = append(out, *h)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	t.held = nil
	return out
}

// readFrames reads the complete entries of a local-format log available
// now.
func (t *logTail) readFrames() ([]logLine, error) {
	buf := make([]byte, 64*1024)
	for {
		n, err := t.r.Read(buf)
		t.partial = append(t.partial, buf[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	var out []logLine
	for {
		e, n, err := shim.DecodeLocal(t.partial)
		if err != nil {
			return out, err
		}
		if n == 0 {
			return out, nil
		}
		t.partial = t.partial[n:]
		out = append(out, logLine{Log: string(e.Line), Stream: e.Stream, Time: e.Time})
	}
}

// Replay writes the whole of src's live log to an attach client (attach
// with logs=1), raw with a tty, else framed; it stops at the first write
// that fails. A log that cannot be opened writes nothing.
func Replay(w io.Writer, src Source) {
	if src.None {
		return
	}
	f, err := os.Open(src.Path)
	if err != nil {
		return
	}
	defer f.Close()
	t := newTail(f, formatOf(src))
	lines, _ := t.readLines()
	for _, l := range append(lines, t.pending()...) {
		if writeLogLine(w, src.TTY, l.Stream, l.Log) != nil {
			return
		}
	}
}

// writeLogLine writes one logged message as a client expects it: raw with
// a TTY, else framed as its stream.
func writeLogLine(w io.Writer, tty bool, stream, msg string) error {
	if tty {
		_, err := io.WriteString(w, msg)
		return err
	}
	n := byte(shim.StreamStdout)
	if stream == "stderr" {
		n = shim.StreamStderr
	}
	return shim.WriteFrame(w, n, []byte(msg))
}
