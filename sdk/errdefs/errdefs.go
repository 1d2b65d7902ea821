// Package errdefs defines the typed errors that cross the plugin boundary.
//
// Plugins return errors wrapping one of the sentinels below, through the
// helpers NotFound, Invalid, Unavailable, AtCapacity, Conflict and Unimplemented. The SDK
// converts them to gRPC status codes with ToGRPC and back with FromGRPC, so the
// host can test them with errors.Is exactly as the plugin created them.
package errdefs

import (
	"errors"
	"fmt"
)

// Sentinel errors. Test for them with errors.Is.
var (
	// ErrNotFound means the named object does not exist.
	ErrNotFound = errors.New("not found")
	// ErrInvalid means the request or the settings are invalid; retrying the
	// same request fails the same way.
	ErrInvalid = errors.New("invalid argument")
	// ErrUnavailable means the plugin or a service behind it cannot serve the
	// request now; a later retry may succeed.
	ErrUnavailable = errors.New("unavailable")
	// ErrAtCapacity means the engine already runs as many jobs as it may, so
	// it did not create the job. It may once running jobs end: the host keeps
	// the job queued without counting an attempt, and logs no failure.
	ErrAtCapacity = errors.New("at capacity")
	// ErrConflict means the request conflicts with the current state, for
	// example an object that already exists with other contents.
	ErrConflict = errors.New("conflict")
	// ErrUnimplemented means the plugin does not implement the call. The host
	// treats it as "feature absent", not as a failure.
	ErrUnimplemented = errors.New("unimplemented")
	// ErrUnreachable means the call did not reach the plugin or its response did
	// not come back, because the connection failed (typically: the plugin
	// process died). Errors wrapping it also wrap ErrUnavailable.
	ErrUnreachable = errors.New("plugin unreachable")
)

// NotFound returns an error wrapping ErrNotFound whose message is the
// formatted text alone, so the text should say what was not found:
//
//	errdefs.NotFound("job %q not found", name)
func NotFound(format string, args ...any) error {
	return wrap(ErrNotFound, format, args...)
}

// Invalid returns an error wrapping ErrInvalid with a formatted message.
func Invalid(format string, args ...any) error {
	return wrap(ErrInvalid, format, args...)
}

// Unavailable returns an error wrapping ErrUnavailable with a formatted message.
func Unavailable(format string, args ...any) error {
	return wrap(ErrUnavailable, format, args...)
}

// AtCapacity returns an error wrapping ErrAtCapacity with a formatted message,
// which should name the limit that was reached.
func AtCapacity(format string, args ...any) error {
	return wrap(ErrAtCapacity, format, args...)
}

// Conflict returns an error wrapping ErrConflict with a formatted message.
func Conflict(format string, args ...any) error {
	return wrap(ErrConflict, format, args...)
}

// Unimplemented returns an error wrapping ErrUnimplemented with a formatted
// message.
func Unimplemented(format string, args ...any) error {
	return wrap(ErrUnimplemented, format, args...)
}

// typedError carries a message and the sentinels it wraps. Its Error method
// returns the message alone, so the message survives a round trip through
// gRPC unchanged instead of gaining a sentinel prefix on each crossing.
type typedError struct {
	message   string
	sentinels []error
}

func (e *typedError) Error() string { return e.message }

func (e *typedError) Unwrap() []error { return e.sentinels }

func wrap(sentinel error, format string, args ...any) error {
	return &typedError{message: fmt.Sprintf(format, args...), sentinels: []error{sentinel}}
}
