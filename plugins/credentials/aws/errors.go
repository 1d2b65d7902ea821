package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"slices"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/estela-go/estela-go/sdk/errdefs"
)

// Error codes of the S3 and ECR APIs, grouped by the errdefs sentinel they
// map to.
var (
	notFoundCodes = []string{"NoSuchKey", "NotFound"}
	deniedCodes   = []string{
		"AccessDenied", "AccessDeniedException", "AllAccessDisabled",
		"InvalidAccessKeyId", "InvalidClientTokenId", "UnrecognizedClientException",
		"SignatureDoesNotMatch", "InvalidSignatureException",
		"InvalidToken", "ExpiredToken", "ExpiredTokenException",
	}
	unavailableCodes = []string{
		"InternalError", "ServiceUnavailable", "ServerException", "SlowDown",
		"RequestTimeout", "Throttling", "ThrottlingException", "RequestLimitExceeded",
		"TooManyRequestsException",
	}
)

// errorKind returns the errdefs sentinel matching an error of an AWS call,
// from its error code, else its HTTP status, else from being a network
// error. It returns nil when none matches.
func errorKind(err error) error {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		if kind := codeKind(apiErr.ErrorCode()); kind != nil {
			return kind
		}
	}
	var respErr *awshttp.ResponseError
	if errors.As(err, &respErr) {
		if kind := statusKind(respErr.HTTPStatusCode()); kind != nil {
			return kind
		}
	}
	var sendErr *smithyhttp.RequestSendError
	var netErr net.Error
	if errors.As(err, &sendErr) || errors.As(err, &netErr) {
		return errdefs.ErrUnavailable
	}
	return nil
}

func codeKind(code string) error {
	switch {
	case slices.Contains(notFoundCodes, code):
		return errdefs.ErrNotFound
	case slices.Contains(deniedCodes, code):
		return errdefs.ErrInvalid
	case slices.Contains(unavailableCodes, code):
		return errdefs.ErrUnavailable
	}
	return nil
}

func statusKind(status int) error {
	switch {
	case status == http.StatusNotFound:
		return errdefs.ErrNotFound
	case status == http.StatusForbidden || status == http.StatusUnauthorized:
		return errdefs.ErrInvalid
	case status == http.StatusTooManyRequests || status >= 500:
		return errdefs.ErrUnavailable
	}
	return nil
}

// isContextError reports whether err comes from the end of the call's
// context. Such errors pass unchanged, so the host receives them as
// canceled or timed out.
func isContextError(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// apiMessage returns the error code and message of an AWS error, or the
// error's text when it carries none.
func apiMessage(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode() + ": " + apiErr.ErrorMessage()
	}
	return err.Error()
}

// s3Error converts an error of an S3 call on key, or on the whole bucket
// when key is empty, to an errdefs error with a readable message.
func s3Error(err error, bucket, key string) error {
	if isContextError(err) {
		return err
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode() == "NoSuchBucket" {
		return errdefs.Invalid("bucket %q does not exist: check the bucket, region and endpoint settings", bucket)
	}
	switch errorKind(err) {
	case errdefs.ErrNotFound:
		return errdefs.NotFound("no object %q in bucket %q", key, bucket)
	case errdefs.ErrInvalid:
		return errdefs.Invalid("access to bucket %q denied (%s): allow the plugin's AWS identity to get, put, list and delete objects in it", bucket, apiMessage(err))
	case errdefs.ErrUnavailable:
		return errdefs.Unavailable("S3 bucket %q unavailable: %v", bucket, err)
	}
	return err
}

// ecrError converts an error of an ECR call to an errdefs error with a
// readable message.
func ecrError(err error) error {
	if isContextError(err) {
		return err
	}
	switch errorKind(err) {
	case errdefs.ErrInvalid:
		return errdefs.Invalid("ECR denied the authorization token (%s): allow the plugin's AWS identity ecr:GetAuthorizationToken", apiMessage(err))
	case errdefs.ErrUnavailable:
		return errdefs.Unavailable("ECR unavailable: %v", err)
	}
	return err
}
