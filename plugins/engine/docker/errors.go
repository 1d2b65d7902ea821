package main

import (
	"context"
	"errors"
	"fmt"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/client"

	"github.com/estela-go/estela-go/sdk/errdefs"
)

// daemonError converts an error of the Docker client into the errdefs type
// the host acts on, prefixed with what failed:
//
//	daemonError(err, "start container %s", id)
//
// A daemon that cannot be reached, times out or fails internally gives
// ErrUnavailable, because a retry may succeed. Errors of unknown kinds are
// wrapped untyped.
func daemonError(err error, format string, args ...any) error {
	what := fmt.Sprintf(format, args...)
	switch {
	case client.IsErrConnectionFailed(err), cerrdefs.IsUnavailable(err), cerrdefs.IsInternal(err),
		cerrdefs.IsDeadlineExceeded(err), errors.Is(err, context.DeadlineExceeded):
		return errdefs.Unavailable("%s: %v", what, err)
	case cerrdefs.IsNotFound(err):
		return errdefs.NotFound("%s: %v", what, err)
	case cerrdefs.IsConflict(err):
		return errdefs.Conflict("%s: %v", what, err)
	case cerrdefs.IsInvalidArgument(err):
		return errdefs.Invalid("%s: %v", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}
