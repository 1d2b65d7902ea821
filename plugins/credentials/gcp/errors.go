package main

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/oauth2"

	"github.com/estela-go/estela-go/sdk/errdefs"
)

// isContextError reports whether err comes from the end of the call's
// context. Such errors pass unchanged, so the host receives them as
// canceled or timed out.
func isContextError(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// isMissingBucket reports whether a 404 response is about the bucket
// rather than the object. Both have the reason "notFound", so only the
// message "The specified bucket does not exist." distinguishes them.
func isMissingBucket(e *apiError) bool {
	return e.Status == http.StatusNotFound && strings.Contains(e.Message, "bucket does not exist")
}

// storageError converts an error of a Cloud Storage request to an errdefs
// error with a readable message. A 404 becomes ErrNotFound, which callers
// reword for the object concerned.
func storageError(err error, bucket string) error {
	if isContextError(err) {
		return err
	}
	var apiErr *apiError
	if errors.As(err, &apiErr) {
		return apiErrorKind(apiErr, bucket)
	}
	if tokenErr := tokenError(err); tokenErr != nil {
		return tokenErr
	}
	var urlErr *url.Error
	var netErr net.Error
	if errors.As(err, &urlErr) || errors.As(err, &netErr) {
		return errdefs.Unavailable("Cloud Storage unreachable: %v", err)
	}
	return err
}

func apiErrorKind(e *apiError, bucket string) error {
	switch {
	case isMissingBucket(e):
		return errdefs.Invalid("bucket %q does not exist: check the bucket and endpoint settings", bucket)
	case e.Status == http.StatusNotFound:
		return errdefs.NotFound("%s", e.Message)
	case e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden:
		return errdefs.Invalid("access to bucket %q denied (%s): grant the plugin's service account the Storage Object Admin role on it", bucket, e.Message)
	case e.Status == http.StatusRequestTimeout || e.Status == http.StatusTooManyRequests || e.Status >= 500:
		return errdefs.Unavailable("bucket %q unavailable: %v", bucket, e)
	case e.Status >= 400:
		return errdefs.Invalid("request on bucket %q rejected: %v", bucket, e)
	}
	return e
}

// tokenError converts an error response of the OAuth2 token endpoint to an
// errdefs error, and returns nil for any other error. A 4xx status other
// than 429 means the credentials are wrong, so retrying cannot help.
func tokenError(err error) error {
	var retrieveErr *oauth2.RetrieveError
	if !errors.As(err, &retrieveErr) || retrieveErr.Response == nil {
		return nil
	}
	status := retrieveErr.Response.StatusCode
	reason := oauthErrorReason(retrieveErr)
	if status >= 400 && status < 500 && status != http.StatusTooManyRequests {
		return errdefs.Invalid("token endpoint rejected the credentials (HTTP %d %s): check that the service account key is valid and the service account enabled", status, reason)
	}
	return errdefs.Unavailable("token endpoint unavailable (HTTP %d %s)", status, reason)
}

// oauthErrorReason returns the "error" and "error_description" fields of
// an OAuth2 error response (RFC 6749, section 5.2).
func oauthErrorReason(e *oauth2.RetrieveError) string {
	if e.ErrorCode != "" {
		return strings.TrimSpace(e.ErrorCode + " " + e.ErrorDescription)
	}
	var body struct {
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
	}
	if json.Unmarshal(e.Body, &body) != nil {
		return ""
	}
	return strings.TrimSpace(body.Error + " " + body.ErrorDescription)
}

// tokenFetchError converts a failure to get an access token to an
// errdefs error with a readable message. Token requests report network
// failures as plain errors, so every error but a rejection is
// ErrUnavailable.
func tokenFetchError(err error) error {
	if isContextError(err) {
		return err
	}
	if tokenErr := tokenError(err); tokenErr != nil {
		return tokenErr
	}
	return errdefs.Unavailable("cannot get an access token: %v", err)
}
