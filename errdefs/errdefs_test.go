package errdefs

import (
	"errors"
	"fmt"
	"io/fs"
	"testing"
)

func TestClassKeepsMessageAndCause(t *testing.T) {
	err := NotFoundf("no such thing: %w", fs.ErrNotExist)
	if err.Error() != "no such thing: file does not exist" {
		t.Errorf("message %q", err)
	}
	if !errors.Is(err, ErrNotFound) || !errors.Is(err, fs.ErrNotExist) {
		t.Error("class or cause lost")
	}
	if errors.Is(err, ErrConflict) {
		t.Error("wrong class matched")
	}
	wrapped := fmt.Errorf("outer: %w", err)
	if !errors.Is(wrapped, ErrNotFound) {
		t.Error("class lost through wrapping")
	}
	if Class(ErrConflict, nil) != nil {
		t.Error("nil classed to non-nil")
	}
}
