// Package errdefs holds lodge's error classes. It is a leaf: it imports
// nothing of lodge's, so every package can class its errors and the API
// edge can map classes to HTTP statuses in one place.
//
// Class an error where it starts, with the message the user should read:
//
//	errdefs.NotFoundf("no such container: %s", name)
//
// and test with errors.Is(err, errdefs.ErrNotFound). The class adds no
// words to the message (Docker's clients print it as it is).
package errdefs

import (
	"errors"
	"fmt"
)

// The error classes. Test with errors.Is.
var (
	ErrNotFound         = errors.New("not found")
	ErrConflict         = errors.New("conflict")
	ErrInvalidArgument  = errors.New("invalid argument")
	ErrPermissionDenied = errors.New("permission denied")
	ErrUnavailable      = errors.New("unavailable")
	ErrNotImplemented   = errors.New("not implemented")
	ErrUnauthorized     = errors.New("unauthorized")
)

type classed struct {
	class error
	err   error
}

func (e *classed) Error() string        { return e.err.Error() }
func (e *classed) Unwrap() []error      { return []error{e.err, e.class} }
func (e *classed) Is(target error) bool { return target == e.class }

// Class puts err in class (one of the Err variables) without changing its
// message; nil stays nil.
func Class(class, err error) error {
	if err == nil {
		return nil
	}
	return &classed{class: class, err: err}
}

// NotFoundf and its siblings format a message (with %w allowed) in a class.
func NotFoundf(format string, a ...any) error { return Class(ErrNotFound, fmt.Errorf(format, a...)) }

// Conflictf formats an ErrConflict.
func Conflictf(format string, a ...any) error { return Class(ErrConflict, fmt.Errorf(format, a...)) }

// InvalidArgumentf formats an ErrInvalidArgument.
func InvalidArgumentf(format string, a ...any) error {
	return Class(ErrInvalidArgument, fmt.Errorf(format, a...))
}

// PermissionDeniedf formats an ErrPermissionDenied.
func PermissionDeniedf(format string, a ...any) error {
	return Class(ErrPermissionDenied, fmt.Errorf(format, a...))
}

// Unavailablef formats an ErrUnavailable.
func Unavailablef(format string, a ...any) error {
	return Class(ErrUnavailable, fmt.Errorf(format, a...))
}

// NotImplementedf formats an ErrNotImplemented.
func NotImplementedf(format string, a ...any) error {
	return Class(ErrNotImplemented, fmt.Errorf(format, a...))
}

// Unauthorizedf formats an ErrUnauthorized: credentials a registry refused.
func Unauthorizedf(format string, a ...any) error {
	return Class(ErrUnauthorized, fmt.Errorf(format, a...))
}
