package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/config"
	awscredentials "github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/hashicorp/go-hclog"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/estela-go/estela-go/sdk/pluginapi"
)

const testBucket = "estela-archives"

// fakeS3 is an in-process S3-compatible server with one bucket, testBucket.
// It records the requests it serves.
type fakeS3 struct {
	server  *httptest.Server
	backend *s3mem.Backend

	mu       sync.Mutex
	requests []string // "METHOD path?query"
}

func startFakeS3(t *testing.T) *fakeS3 {
	t.Helper()
	f := &fakeS3{backend: s3mem.New()}
	if err := f.backend.CreateBucket(testBucket); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	handler := gofakes3.New(f.backend, gofakes3.WithAutoBucket(false)).Server()
	f.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.requests = append(f.requests, r.Method+" "+r.URL.RequestURI())
		f.mu.Unlock()
		handler.ServeHTTP(w, r)
	}))
	t.Cleanup(f.server.Close)
	return f
}

// countRequests returns how many recorded requests contain substr.
func (f *fakeS3) countRequests(substr string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, r := range f.requests {
		if strings.Contains(r, substr) {
			n++
		}
	}
	return n
}

// objectKeys returns the keys stored in testBucket.
func (f *fakeS3) objectKeys(t *testing.T) []string {
	t.Helper()
	list, err := f.backend.ListBucket(testBucket, &gofakes3.Prefix{}, gofakes3.ListBucketPage{})
	if err != nil {
		t.Fatalf("list bucket: %v", err)
	}
	var keys []string
	for _, o := range list.Contents {
		keys = append(keys, o.Key)
	}
	return keys
}

// testProvider returns an unconfigured provider that uses static AWS
// credentials and the smallest part size S3 allows.
func testProvider() *provider {
	p := newProvider(hclog.NewNullLogger())
	p.partSize = 5 << 20
	p.loadOptions = []func(*config.LoadOptions) error{
		config.WithCredentialsProvider(awscredentials.NewStaticCredentialsProvider("AKIDTEST", "test-secret", "")),
		config.WithSharedConfigFiles([]string{}),
		config.WithSharedCredentialsFiles([]string{}),
	}
	return p
}

// configure applies settings to p and fails the test on an error
// diagnostic.
func configure(t *testing.T, p *provider, settings map[string]any) {
	t.Helper()
	raw, err := json.Marshal(settings)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := p.Configure(t.Context(), &pluginapi.ConfigureRequest{Config: raw})
	if err != nil {
		t.Fatalf("Configure: %v", err)
	}
	if err := resp.Err(); err != nil {
		t.Fatalf("Configure diagnostics: %v", err)
	}
}

// configuredWithS3 returns a provider storing archives in a new fakeS3,
// configured with the extra settings given.
func configuredWithS3(t *testing.T, extra map[string]any) (*provider, *fakeS3) {
	t.Helper()
	f := startFakeS3(t)
	settings := map[string]any{"bucket": testBucket, "endpoint": f.server.URL, "region": "eu-west-1"}
	for k, v := range extra {
		settings[k] = v
	}
	p := testProvider()
	configure(t, p, settings)
	return p, f
}

// object returns the contents of an object in the fake bucket.
func (f *fakeS3) object(t *testing.T, key string) []byte {
	t.Helper()
	obj, err := f.backend.GetObject(testBucket, key, nil)
	if err != nil {
		t.Fatalf("get object %s: %v", key, err)
	}
	defer obj.Contents.Close()
	data, err := io.ReadAll(obj.Contents)
	if err != nil {
		t.Fatalf("read object %s: %v", key, err)
	}
	return data
}
