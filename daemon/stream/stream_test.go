package stream

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/lodge-containers/lodge/errdefs"
)

func TestDetachKeys(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []byte
		bad  bool
	}{
		{"", []byte{16, 17}, false},
		{"ctrl-p,ctrl-q", []byte{16, 17}, false},
		{"ctrl-x,x", []byte{24, 'x'}, false},
		{"ctrl-@,ctrl-[", []byte{0, 27}, false},
		{"a", []byte{'a'}, false},
		{"ctrl-", nil, true},
		{"ctrl-p,,", nil, true},
		{"shift-a", nil, true},
		{"ctrl-ü", nil, true},
	} {
		got, err := DetachKeys(tc.in)
		if tc.bad {
			if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "Invalid detach keys ("+tc.in+") provided") {
				t.Errorf("%q: err %v, want Docker's invalid-argument message", tc.in, err)
			}
			continue
		}
		if err != nil || !bytes.Equal(got, tc.want) {
			t.Errorf("%q: %v %v, want %v", tc.in, got, err, tc.want)
		}
	}
}

// TestDetachable: the keys end the input and are not passed on; a partial
// sequence followed by other bytes is passed on whole.
func TestDetachable(t *testing.T) {
	keys := []byte{16, 17}
	var out bytes.Buffer
	_, err := io.Copy(&out, Detachable(strings.NewReader("ab\x10c\x10\x11never"), keys))
	if !IsDetach(err) || out.String() != "ab\x10c" {
		t.Errorf("got %q, %v", out.String(), err)
	}
	out.Reset()
	_, err = io.Copy(&out, Detachable(strings.NewReader("plain\x10x"), keys))
	if err != nil || IsDetach(err) || out.String() != "plain\x10x" {
		t.Errorf("no sequence: got %q, %v", out.String(), err)
	}
}
