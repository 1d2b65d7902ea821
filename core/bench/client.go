package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// apiClient calls the API process over loopback, reusing connections across goroutines.
type apiClient struct {
	base string
	http *http.Client
}

func newAPIClient(base string, conns int) *apiClient {
	transport := &http.Transport{MaxIdleConns: conns * 2, MaxIdleConnsPerHost: conns * 2, IdleConnTimeout: time.Minute}
	return &apiClient{base: base, http: &http.Client{Transport: transport, Timeout: 10 * time.Minute}}
}

// send makes a request with token as the Authorization token; the caller closes the body.
func (c *apiClient) send(ctx context.Context, method, path, token string, body []byte, contentType string) (*http.Response, error) {
	var reader io.Reader
	if body != nil {
		reader = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, reader)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Token "+token)
	}
	return c.http.Do(req)
}

// call makes a request, checks that the status is want, and decodes the JSON response into
// out when out is not nil.
func (c *apiClient) call(ctx context.Context, method, path, token string, body []byte, contentType string, want int, out any) error {
	resp, err := c.send(ctx, method, path, token, body, contentType)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: read response: %w", method, path, err)
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: status %d, expected %d: %.500s", method, path, resp.StatusCode, want, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s %s: decode %.200q: %w", method, path, raw, err)
		}
	}
	return nil
}

// postJSON sends body encoded as JSON.
func (c *apiClient) postJSON(ctx context.Context, path, token string, body any, want int, out any) error {
	data, err := json.Marshal(body)
	if err != nil {
		return err
	}
	return c.call(ctx, http.MethodPost, path, token, data, "application/json", want, out)
}

// drain reads and discards a response body, returning how many bytes and newlines it had.
func drain(r io.Reader) (bytesRead, lines int64, err error) {
	buf := make([]byte, 256<<10)
	for {
		n, err := r.Read(buf)
		bytesRead += int64(n)
		lines += int64(bytes.Count(buf[:n], []byte{'\n'}))
		if err == io.EOF {
			return bytesRead, lines, nil
		}
		if err != nil {
			return bytesRead, lines, err
		}
	}
}
