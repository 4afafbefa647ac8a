// Package stream is the client side of an attach or an exec, shared by the
// services that connect clients to a container's processes: the stream
// type and Docker's detach keys. It holds no state.
package stream

import (
	"errors"
	"io"

	"github.com/moby/term"

	"github.com/lodge-containers/lodge/errdefs"
)

// Stream is a client's side of an attach or an exec: what the client sends
// is read from it, output is written to it, and CloseWrite (when there is
// one) tells the client output has ended.
type Stream interface {
	io.ReadWriter
}

// defaultDetachKeys are Docker's: ctrl-p ctrl-q.
var defaultDetachKeys = []byte{16, 17}

// DetachKeys parses a detach key sequence ("ctrl-p,ctrl-q", "a,b",
// "ctrl-@"), empty meaning Docker's default. A sequence it cannot read is
// errdefs.ErrInvalidArgument with Docker's message.
func DetachKeys(keys string) ([]byte, error) {
	if keys == "" {
		return defaultDetachKeys, nil
	}
	b, err := term.ToBytes(keys)
	if err != nil || len(b) == 0 {
		return nil, errdefs.InvalidArgumentf("Invalid detach keys (%s) provided", keys)
	}
	return b, nil
}

// Detachable reads a client's input for a tty, and stops at the detach
// keys: they are not passed on, and the read ends with term.EscapeError.
func Detachable(r io.Reader, keys []byte) io.Reader { return term.NewEscapeProxy(r, keys) }

// IsDetach reports whether err is the client's detach sequence.
func IsDetach(err error) bool {
	var esc term.EscapeError
	return errors.As(err, &esc)
}
