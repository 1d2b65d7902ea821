package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
)

const (
	// defaultChunkSize is the size of the chunks of a resumable upload. Cloud
	// Storage requires a multiple of 256 KiB and recommends at least 8 MiB.
	// An upload holds one chunk in memory.
	defaultChunkSize = 8 << 20
	// cancelTimeout bounds the request that cancels a failed upload.
	cancelTimeout = 10 * time.Second
	// maxErrorBody is the number of bytes of an error response read for
	// its message.
	maxErrorBody = 64 << 10
)

// statusResumeIncomplete is the status of a resumable upload that awaits
// more data.
const statusResumeIncomplete = 308

// storageClient calls the Cloud Storage JSON API for one bucket.
type storageClient struct {
	// http adds an OAuth2 access token to every request.
	http      *http.Client
	endpoint  string
	bucket    string
	chunkSize int
	logger    hclog.Logger
}

// object is the part of a Cloud Storage object resource that the plugin
// reads.
type object struct {
	Name string `json:"name"`
	// Size is a decimal number of bytes, encoded as a string.
	Size string `json:"size"`
	// MD5Hash is the base64 encoding of the object's MD5 digest.
	MD5Hash string `json:"md5Hash"`
}

// apiError is an error response of the JSON API.
type apiError struct {
	Status  int
	Reason  string
	Message string
}

func (e *apiError) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("Cloud Storage returned HTTP %d: %s", e.Status, e.Message)
	}
	return fmt.Sprintf("Cloud Storage returned HTTP %d (%s): %s", e.Status, e.Reason, e.Message)
}

// readAPIError builds an apiError from an error response, whose body has
// the form {"error": {"code", "message", "errors": [{"reason"}]}}.
func readAPIError(resp *http.Response) *apiError {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var decoded struct {
		Error struct {
			Message string `json:"message"`
			Errors  []struct {
				Reason string `json:"reason"`
			} `json:"errors"`
		} `json:"error"`
	}
	e := &apiError{Status: resp.StatusCode, Message: strings.TrimSpace(string(body))}
	if json.Unmarshal(body, &decoded) == nil && decoded.Error.Message != "" {
		e.Message = decoded.Error.Message
		if len(decoded.Error.Errors) > 0 {
			e.Reason = decoded.Error.Errors[0].Reason
		}
	}
	return e
}

// objectURL returns the URL of an object's metadata, and with ?alt=media
// that of its contents. The name is escaped whole, slashes included, as the
// API requires.
func (c *storageClient) objectURL(name string) string {
	return c.endpoint + "/storage/v1/b/" + url.PathEscape(c.bucket) + "/o/" + url.PathEscape(name)
}

// do sends a request and returns the response when its status is one of
// want, or an *apiError otherwise.
//
// TODO: retry 408, 429 and 5xx responses with exponential backoff, and
// resume a failed upload from its persisted bytes, as Cloud Storage
// recommends. Until then such failures reach the host as ErrUnavailable.
func (c *storageClient) do(req *http.Request, want ...int) (*http.Response, error) {
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	for _, status := range want {
		if resp.StatusCode == status {
			return resp, nil
		}
	}
	defer resp.Body.Close()
	return nil, readAPIError(resp)
}

// download writes the contents of an object into w.
func (c *storageClient) download(ctx context.Context, name string, w io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.objectURL(name)+"?alt=media", nil)
	if err != nil {
		return err
	}
	resp, err := c.do(req, http.StatusOK)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("read object %s: %w", name, err)
	}
	return nil
}

// delete deletes an object. A missing object is an *apiError with status
// 404.
func (c *storageClient) delete(ctx context.Context, name string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, c.objectURL(name), nil)
	if err != nil {
		return err
	}
	resp, err := c.do(req, http.StatusNoContent, http.StatusOK)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// listPage returns the names of one page of objects under prefix, and the
// token of the next page, empty after the last one.
func (c *storageClient) listPage(ctx context.Context, prefix, pageToken string) ([]string, string, error) {
	query := url.Values{"prefix": {prefix}, "fields": {"items(name),nextPageToken"}}
	if pageToken != "" {
		query.Set("pageToken", pageToken)
	}
	listURL := c.endpoint + "/storage/v1/b/" + url.PathEscape(c.bucket) + "/o?" + query.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, listURL, nil)
	if err != nil {
		return nil, "", err
	}
	resp, err := c.do(req, http.StatusOK)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	var page struct {
		Items         []object `json:"items"`
		NextPageToken string   `json:"nextPageToken"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		return nil, "", fmt.Errorf("decode object list: %w", err)
	}
	names := make([]string, 0, len(page.Items))
	for _, item := range page.Items {
		names = append(names, item.Name)
	}
	return names, page.NextPageToken, nil
}

// upload streams r into an object with a resumable upload, one chunk at a
// time, and returns the stored object. A failed upload is cancelled, so no
// partial object remains.
func (c *storageClient) upload(ctx context.Context, name string, r io.Reader) (*object, error) {
	session, err := c.startUpload(ctx, name)
	if err != nil {
		return nil, err
	}
	obj, err := c.sendChunks(ctx, session, r)
	if err != nil {
		if cancelErr := c.cancelUpload(session); cancelErr != nil {
			c.logger.Warn("cannot cancel the failed upload", "object", name, "error", cancelErr)
		}
		return nil, err
	}
	return obj, nil
}

// startUpload starts a resumable upload and returns its session URI.
func (c *storageClient) startUpload(ctx context.Context, name string) (string, error) {
	query := url.Values{"uploadType": {"resumable"}, "name": {name}}
	startURL := c.endpoint + "/upload/storage/v1/b/" + url.PathEscape(c.bucket) + "/o?" + query.Encode()
	metadata, err := json.Marshal(map[string]string{"name": name, "contentType": "application/zip"})
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, startURL, bytes.NewReader(metadata))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json; charset=UTF-8")
	req.Header.Set("X-Upload-Content-Type", "application/zip")
	resp, err := c.do(req, http.StatusOK, http.StatusCreated)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	session := resp.Header.Get("Location")
	if session == "" {
		return "", fmt.Errorf("start upload of %s: response has no Location header", name)
	}
	return session, nil
}

// sendChunks reads r one chunk at a time and sends each chunk. The size of
// the object is known once a read ends the stream.
func (c *storageClient) sendChunks(ctx context.Context, session string, r io.Reader) (*object, error) {
	buf := make([]byte, c.chunkSize)
	var offset int64
	for {
		n, err := io.ReadFull(r, buf)
		last := errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
		if err != nil && !last {
			return nil, fmt.Errorf("read archive: %w", err)
		}
		obj, err := c.sendChunk(ctx, session, buf[:n], offset, last)
		if err != nil {
			return nil, err
		}
		if last {
			return obj, nil
		}
		offset += int64(n)
	}
}

// sendChunk sends the bytes of chunk, which start at offset in the object,
// and resends those the server did not persist. It returns the stored
// object after the last chunk.
func (c *storageClient) sendChunk(ctx context.Context, session string, chunk []byte, offset int64, last bool) (*object, error) {
	for {
		resp, err := c.putChunk(ctx, session, chunk, offset, last)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != statusResumeIncomplete {
			defer resp.Body.Close()
			var obj object
			if err := json.NewDecoder(resp.Body).Decode(&obj); err != nil {
				return nil, fmt.Errorf("decode uploaded object: %w", err)
			}
			return &obj, nil
		}
		resp.Body.Close()
		persisted, err := persistedBytes(resp.Header.Get("Range"))
		if err != nil {
			return nil, err
		}
		end := offset + int64(len(chunk))
		if persisted == end && !last {
			return nil, nil
		}
		if persisted <= offset || persisted > end {
			return nil, fmt.Errorf("upload stalled: server has %d bytes after a chunk ending at byte %d", persisted, end)
		}
		chunk, offset = chunk[persisted-offset:], persisted
	}
}

// putChunk sends one request of a resumable upload. Content-Range gives the
// total size only with the last chunk, and "bytes */<size>" when that chunk
// is empty.
func (c *storageClient) putChunk(ctx context.Context, session string, chunk []byte, offset int64, last bool) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, session, bytes.NewReader(chunk))
	if err != nil {
		return nil, err
	}
	total := "*"
	if last {
		total = strconv.FormatInt(offset+int64(len(chunk)), 10)
	}
	if len(chunk) == 0 {
		req.Header.Set("Content-Range", "bytes */"+total)
	} else {
		req.Header.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%s", offset, offset+int64(len(chunk))-1, total))
	}
	return c.do(req, http.StatusOK, http.StatusCreated, statusResumeIncomplete)
}

// persistedBytes returns the number of bytes a Range header of the form
// "bytes=0-<last>" reports persisted. No header means none.
func persistedBytes(header string) (int64, error) {
	if header == "" {
		return 0, nil
	}
	last, ok := strings.CutPrefix(header, "bytes=0-")
	n, err := strconv.ParseInt(last, 10, 64)
	if !ok || err != nil {
		return 0, fmt.Errorf("invalid Range header %q in an upload response", header)
	}
	return n + 1, nil
}

// cancelUpload ends a resumable upload session, so Cloud Storage drops the
// bytes received. It runs after the RPC's context may have ended, so it has
// its own timeout. An upload left uncancelled expires a week after it
// started, as the Cloud Storage documentation states.
func (c *storageClient) cancelUpload(session string) error {
	ctx, cancel := context.WithTimeout(context.Background(), cancelTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, session, nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	// Cloud Storage responds to the cancel of a session with status 499.
	if resp.StatusCode != 499 && resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("cancel upload: HTTP status %d", resp.StatusCode)
	}
	return nil
}
