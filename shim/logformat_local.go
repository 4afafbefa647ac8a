package shim

import (
	"encoding/binary"
	"errors"
	"time"
)

// Docker's local log driver stores each message as a protobuf LogEntry
// (moby's api/types/plugins/logdriver/entry.proto) between two 4-byte
// big-endian copies of its length: the length before lets a reader go
// forward, the one after lets it go backwards from the end for a tail.
// The message is a few fields, so it is written and read by hand here
// rather than with a protobuf library:
//
//	1 source     string  "stdout" or "stderr"
//	2 time_nano  int64   Unix nanoseconds
//	3 line       bytes   the line without its newline
//	4 partial    bool    true when the line had no newline (split or last)

const localFrameLen = 4

// EncodeLocal frames one logged line (its newline, if any, included) as
// Docker's local driver writes it.
func EncodeLocal(stream string, line []byte, t time.Time) []byte {
	partial := len(line) == 0 || line[len(line)-1] != '\n'
	if !partial {
		line = line[:len(line)-1]
	}
	var msg []byte
	msg = appendTag(msg, 1, 2)
	msg = binary.AppendUvarint(msg, uint64(len(stream)))
	msg = append(msg, stream...)
	msg = appendTag(msg, 2, 0)
	msg = binary.AppendUvarint(msg, uint64(t.UnixNano()))
	msg = appendTag(msg, 3, 2)
	msg = binary.AppendUvarint(msg, uint64(len(line)))
	msg = append(msg, line...)
	if partial {
		msg = appendTag(msg, 4, 0)
		msg = append(msg, 1)
	}
	out := make([]byte, 0, len(msg)+2*localFrameLen)
	out = binary.BigEndian.AppendUint32(out, uint32(len(msg)))
	out = append(out, msg...)
	return binary.BigEndian.AppendUint32(out, uint32(len(msg)))
}

func appendTag(b []byte, field, wire int) []byte {
	return binary.AppendUvarint(b, uint64(field<<3|wire))
}

// LocalEntry is one decoded message of a local-format log.
type LocalEntry struct {
	Stream string
	Time   time.Time
	// Line is the message as written, its newline restored unless the
	// entry was partial.
	Line []byte
}

// errShortFrame means b holds no complete frame yet.
var errShortFrame = errors.New("incomplete log frame")

// DecodeLocal reads the first frame of b. It returns the entry and the
// bytes the frame took, or n == 0 when b does not yet hold a whole frame
// (a writer may be mid-write); a frame that cannot be read is an error.
func DecodeLocal(b []byte) (e LocalEntry, n int, err error) {
	if len(b) < localFrameLen {
		return e, 0, nil
	}
	size := int(binary.BigEndian.Uint32(b))
	if size > 16<<20 {
		return e, 0, errors.New("log frame too large: the file is not in the local format")
	}
	if len(b) < size+2*localFrameLen {
		return e, 0, nil
	}
	msg := b[localFrameLen : localFrameLen+size]
	if int(binary.BigEndian.Uint32(b[localFrameLen+size:])) != size {
		return e, 0, errors.New("log frame lengths differ: the file is not in the local format")
	}
	partial := false
	for len(msg) > 0 {
		tag, k := binary.Uvarint(msg)
		if k <= 0 {
			return e, 0, errShortFrame
		}
		msg = msg[k:]
		field, wire := tag>>3, tag&7
		switch wire {
		case 0:
			v, k := binary.Uvarint(msg)
			if k <= 0 {
				return e, 0, errShortFrame
			}
			msg = msg[k:]
			switch field {
			case 2:
				e.Time = time.Unix(0, int64(v))
			case 4:
				partial = v != 0
			}
		case 2:
			l, k := binary.Uvarint(msg)
			if k <= 0 || uint64(len(msg)-k) < l {
				return e, 0, errShortFrame
			}
			v := msg[k : k+int(l)]
			msg = msg[k+int(l):]
			switch field {
			case 1:
				e.Stream = string(v)
			case 3:
				e.Line = append([]byte{}, v...)
			}
		default:
			return e, 0, errors.New("log frame: a protobuf wire type the local format does not use")
		}
	}
	if !partial {
		e.Line = append(e.Line, '\n')
	}
	return e, size + 2*localFrameLen, nil
}
