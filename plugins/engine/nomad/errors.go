package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"

	"github.com/hashicorp/nomad/api"

	"github.com/estela-go/estela-go/sdk/errdefs"
)

// nomadError converts an error of the Nomad client into the errdefs type
// the host acts on, prefixed with what failed:
//
//	nomadError(err, "register job %s", name)
//
// An agent that cannot be reached, times out or responds with a 5xx status
// gives ErrUnavailable, because a retry may succeed. A 403 means the token
// lacks a capability, which a retry does not fix, so it gives ErrInvalid.
func nomadError(err error, format string, args ...any) error {
	what := fmt.Sprintf(format, args...)
	var resp api.UnexpectedResponseError
	if errors.As(err, &resp) && resp.HasStatusCode() {
		return statusError(resp.StatusCode(), what, err)
	}
	var netErr net.Error
	var urlErr *url.Error
	if errors.As(err, &netErr) || errors.As(err, &urlErr) || errors.Is(err, context.DeadlineExceeded) {
		return errdefs.Unavailable("%s: %v", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func statusError(code int, what string, err error) error {
	switch {
	case code == http.StatusNotFound:
		return errdefs.NotFound("%s: %v", what, err)
	case code == http.StatusConflict:
		return errdefs.Conflict("%s: %v", what, err)
	case code == http.StatusForbidden:
		return errdefs.Invalid("%s: the token lacks a capability for it: %v", what, err)
	case code == http.StatusTooManyRequests || code >= 500:
		return errdefs.Unavailable("%s: %v", what, err)
	case code >= 400:
		return errdefs.Invalid("%s: %v", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// isNotFound reports whether the agent responded with 404.
func isNotFound(err error) bool {
	var resp api.UnexpectedResponseError
	return errors.As(err, &resp) && resp.StatusCode() == http.StatusNotFound
}
