package shim

import (
	"bytes"
	"errors"
	"time"
)

// The CRI log format (the k8s-file driver, Podman's name for it): one
// record a line, as the kubelet's reader and `crictl logs` parse it:
//
//	<time> <stream> <tag> <content>\n
//
// time is RFC 3339 with nanoseconds (written in UTC, at a fixed width so
// records sort as text), stream "stdout" or "stderr" (a tty's output is
// stdout), tag "F" for a full line, whose newline is the record's own,
// or "P" for part of one: a line cut because it was longer than maxLine,
// or output that ended without a newline when it was read. Output is
// written as it is read, not held back for its newline, so a reader
// following the file sees a prompt as soon as the container writes it.

// criTimeFormat is containerd's: RFC3339Nano, but with all nine digits.
const criTimeFormat = "2006-01-02T15:04:05.000000000Z07:00"

// CRI log tags.
const (
	CRIFull    = 'F'
	CRIPartial = 'P'
)

// AppendCRI appends one CRI log record to b.
func AppendCRI(b []byte, t time.Time, stream string, tag byte, content []byte) []byte {
	b = t.UTC().AppendFormat(b, criTimeFormat)
	b = append(b, ' ')
	b = append(b, stream...)
	b = append(b, ' ', tag, ' ')
	b = append(b, content...)
	return append(b, '\n')
}

// criRecords cuts a chunk of output, as read, into CRI records: each line
// that ends in it is full (its newline dropped), what follows the last
// newline is partial, and either is cut into partial records of maxLine
// bytes first when longer.
func criRecords(p []byte, emit func(tag byte, content []byte)) {
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		line, rest, tag := p, []byte(nil), byte(CRIPartial)
		if i >= 0 {
			line, rest, tag = p[:i], p[i+1:], CRIFull
		}
		for len(line) > maxLine {
			emit(CRIPartial, line[:maxLine])
			line = line[maxLine:]
		}
		if tag == CRIFull || len(line) > 0 {
			emit(tag, line)
		}
		p = rest
	}
}

// CRIEntry is one record of a CRI-format log.
type CRIEntry struct {
	Time    time.Time
	Stream  string
	Partial bool
	// Content is the record's text without the record's newline.
	Content []byte
}

// ParseCRI reads one record (a line, its newline removed or not) as the
// kubelet does: time, stream, tag, content; tags after a ':' in the tag
// field are allowed and ignored (the format's room to grow).
func ParseCRI(line []byte) (CRIEntry, error) {
	var e CRIEntry
	line = bytes.TrimSuffix(line, []byte("\n"))
	ts, rest, ok := bytes.Cut(line, []byte(" "))
	if !ok {
		return e, errors.New("CRI log record: no timestamp")
	}
	t, err := time.Parse(time.RFC3339Nano, string(ts))
	if err != nil {
		return e, errors.New("CRI log record: unexpected timestamp format")
	}
	stream, rest, ok := bytes.Cut(rest, []byte(" "))
	if !ok || (string(stream) != "stdout" && string(stream) != "stderr") {
		return e, errors.New("CRI log record: unexpected stream")
	}
	tags, content, ok := bytes.Cut(rest, []byte(" "))
	if !ok {
		return e, errors.New("CRI log record: no tag")
	}
	tag, _, _ := bytes.Cut(tags, []byte(":"))
	e.Time, e.Stream, e.Partial, e.Content = t, string(stream), string(tag) == string(CRIPartial), content
	return e, nil
}
