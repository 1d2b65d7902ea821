package errdefs

import (
	"context"
	"errors"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// errorDomain marks the statuses that ToGRPC built. FromGRPC uses it to tell
// an Unavailable error returned by a plugin from one that gRPC raised because
// the connection failed.
const errorDomain = "errdefs.estela-go"

// ToGRPC converts err to a gRPC status error, keeping its message. Plugins
// return its result from their gRPC handlers; the SDK's adapters do that for
// them. Errors that wrap none of the sentinels become codes.Unknown.
func ToGRPC(err error) error {
	if err == nil {
		return nil
	}
	code, ok := codeOf(err)
	if !ok {
		if s, isStatus := status.FromError(err); isStatus {
			return s.Err()
		}
		return status.Error(codes.Unknown, err.Error())
	}
	s := status.New(code, err.Error())
	withInfo, detailErr := s.WithDetails(&errdetails.ErrorInfo{Reason: code.String(), Domain: errorDomain})
	if detailErr != nil {
		return s.Err()
	}
	return withInfo.Err()
}

func codeOf(err error) (codes.Code, bool) {
	switch {
	case errors.Is(err, ErrNotFound):
		return codes.NotFound, true
	case errors.Is(err, ErrInvalid):
		return codes.InvalidArgument, true
	case errors.Is(err, ErrUnavailable):
		return codes.Unavailable, true
	case errors.Is(err, ErrAtCapacity):
		return codes.ResourceExhausted, true
	case errors.Is(err, ErrConflict):
		return codes.AlreadyExists, true
	case errors.Is(err, ErrUnimplemented):
		return codes.Unimplemented, true
	case errors.Is(err, context.Canceled):
		return codes.Canceled, true
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded, true
	}
	return codes.OK, false
}

// FromGRPC converts a gRPC status error back to an error wrapping the matching
// sentinel, with the status message as its message. Canceled and
// DeadlineExceeded become context.Canceled and context.DeadlineExceeded.
// An Unavailable status that ToGRPC did not build comes from the transport,
// so it wraps ErrUnreachable as well as ErrUnavailable. A ResourceExhausted
// status wraps ErrAtCapacity only when ToGRPC built it. Other codes are
// returned unchanged, and errors that are not statuses too.
func FromGRPC(err error) error {
	if err == nil {
		return nil
	}
	s, ok := status.FromError(err)
	if !ok {
		return err
	}
	sentinels := sentinelsOf(s)
	if sentinels == nil {
		return err
	}
	return &typedError{message: s.Message(), sentinels: sentinels}
}

func sentinelsOf(s *status.Status) []error {
	switch s.Code() {
	case codes.NotFound:
		return []error{ErrNotFound}
	case codes.InvalidArgument, codes.OutOfRange:
		return []error{ErrInvalid}
	case codes.Unavailable:
		if fromPlugin(s) {
			return []error{ErrUnavailable}
		}
		return []error{ErrUnreachable, ErrUnavailable}
	case codes.ResourceExhausted:
		// gRPC itself returns RESOURCE_EXHAUSTED for a message over the size limit.
		if fromPlugin(s) {
			return []error{ErrAtCapacity}
		}
		return nil
	case codes.AlreadyExists, codes.FailedPrecondition, codes.Aborted:
		return []error{ErrConflict}
	case codes.Unimplemented:
		return []error{ErrUnimplemented}
	case codes.Canceled:
		return []error{context.Canceled}
	case codes.DeadlineExceeded:
		return []error{context.DeadlineExceeded}
	case codes.Unknown:
		// A plain error from the plugin: keep its message, drop the code.
		return []error{}
	}
	return nil
}

func fromPlugin(s *status.Status) bool {
	for _, detail := range s.Details() {
		if info, ok := detail.(*errdetails.ErrorInfo); ok && info.GetDomain() == errorDomain {
			return true
		}
	}
	return false
}
