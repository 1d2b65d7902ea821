package errdefs

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestRoundTripKeepsSentinelAndMessage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		err      error
		code     codes.Code
		sentinel error
	}{
		{"not found", NotFound("job %q not found", "a"), codes.NotFound, ErrNotFound},
		{"invalid", Invalid("deploy id %d must be positive", -1), codes.InvalidArgument, ErrInvalid},
		{"unavailable", Unavailable("docker daemon down"), codes.Unavailable, ErrUnavailable},
		{"at capacity", AtCapacity("4 jobs run, the most max_running_jobs allows"), codes.ResourceExhausted, ErrAtCapacity},
		{"conflict", Conflict("job exists"), codes.AlreadyExists, ErrConflict},
		{"unimplemented", Unimplemented("no logs"), codes.Unimplemented, ErrUnimplemented},
		{"wrapped", fmt.Errorf("get job: %w", NotFound("job b not found")), codes.NotFound, ErrNotFound},
		{"canceled", fmt.Errorf("wait: %w", context.Canceled), codes.Canceled, context.Canceled},
		{"deadline", context.DeadlineExceeded, codes.DeadlineExceeded, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			wire := ToGRPC(tt.err)
			if got := status.Code(wire); got != tt.code {
				t.Errorf("ToGRPC code = %v, want %v", got, tt.code)
			}
			back := FromGRPC(wire)
			if !errors.Is(back, tt.sentinel) {
				t.Errorf("FromGRPC(%v) does not wrap %v", wire, tt.sentinel)
			}
			if back.Error() != tt.err.Error() {
				t.Errorf("message = %q, want %q", back.Error(), tt.err.Error())
			}
			if errors.Is(back, ErrUnreachable) {
				t.Errorf("error from the plugin reads as unreachable: %v", back)
			}
		})
	}
}

func TestPlainErrorKeepsMessage(t *testing.T) {
	t.Parallel()
	wire := ToGRPC(errors.New("disk full"))
	if got := status.Code(wire); got != codes.Unknown {
		t.Errorf("code = %v, want Unknown", got)
	}
	back := FromGRPC(wire)
	if back.Error() != "disk full" {
		t.Errorf("message = %q, want %q", back.Error(), "disk full")
	}
	for _, sentinel := range []error{ErrNotFound, ErrInvalid, ErrUnavailable, ErrConflict} {
		if errors.Is(back, sentinel) {
			t.Errorf("plain error wraps %v", sentinel)
		}
	}
}

func TestTransportUnavailableIsUnreachable(t *testing.T) {
	t.Parallel()
	back := FromGRPC(status.Error(codes.Unavailable, "error reading from server: EOF"))
	if !errors.Is(back, ErrUnreachable) {
		t.Errorf("%v does not wrap ErrUnreachable", back)
	}
	if !errors.Is(back, ErrUnavailable) {
		t.Errorf("%v does not wrap ErrUnavailable", back)
	}
}

func TestFromGRPCOtherCodes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   error
		want codes.Code
	}{
		{"internal stays a status", status.Error(codes.Internal, "boom"), codes.Internal},
		{"permission stays a status", status.Error(codes.PermissionDenied, "no"), codes.PermissionDenied},
		// gRPC itself returns this code for a message over the size limit, from no engine.
		{"resource exhausted from gRPC stays a status", status.Error(codes.ResourceExhausted, "received message larger than max"), codes.ResourceExhausted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := status.Code(FromGRPC(tt.in)); got != tt.want {
				t.Errorf("code = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestNilStaysNil(t *testing.T) {
	t.Parallel()
	if err := ToGRPC(nil); err != nil {
		t.Errorf("ToGRPC(nil) = %v", err)
	}
	if err := FromGRPC(nil); err != nil {
		t.Errorf("FromGRPC(nil) = %v", err)
	}
}
