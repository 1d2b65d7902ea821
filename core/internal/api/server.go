// Package api serves estela's HTTP API: the routes, their request and response shapes, and
// the one place where roles are checked.
package api

import (
	"context"
	"io"
	"net/http"
	"sync"

	"github.com/hashicorp/go-hclog"

	"github.com/estela-go/estela-go/core/internal/livestats"
	"github.com/estela-go/estela-go/core/internal/mail"
	"github.com/estela-go/estela-go/core/internal/store"
	"github.com/estela-go/estela-go/sdk/credentials"
)

// Queue is how the API hands work to the workers.
type Queue interface {
	// NotifyQueued notifies the workers that a job waits in Postgres to be launched.
	NotifyQueued() error
	EnqueueBuild(did int64) error
}

// Dispatcher launches and stops jobs on the engine; the API uses it for ?sync=true and stops.
type Dispatcher interface {
	DispatchJob(ctx context.Context, jid int64) error
	StopJob(ctx context.Context, job *store.Job, previous string)
}

// Archives stores uploaded project archives: the credentials plugin.
type Archives interface {
	PutProject(ctx context.Context, req *credentials.PutProjectRequest) (*credentials.PutProjectResponse, error)
	GetProject(ctx context.Context, req *credentials.GetProjectRequest, w io.Writer) error
	DeleteProject(ctx context.Context, req *credentials.DeleteProjectRequest) (*credentials.DeleteProjectResponse, error)
}

// HealthCheck reports whether a dependency works; a nil error means healthy.
type HealthCheck func(ctx context.Context) error

// Options are the server's settings.
type Options struct {
	CORSOrigins []string
	// MaxUploadBytes caps a project archive.
	MaxUploadBytes int64
	// MaxUnpackedBytes caps the uncompressed size of a project archive.
	MaxUnpackedBytes int64
	// MaxIngestBytes caps one data batch from a job.
	MaxIngestBytes int64
	// Health lists named checks shown by GET /api/health.
	Health map[string]HealthCheck
	// Mailer sends account e-mails; when nil, they are only logged.
	Mailer mail.Sender
	// Accounts holds the registration and account e-mail settings.
	Accounts AccountOptions
}

// Server is the HTTP API.
type Server struct {
	store      *store.Store
	queue      Queue
	dispatcher Dispatcher
	archives   Archives
	stats      *livestats.Reader
	opts       Options
	log        hclog.Logger
	// background counts work started by requests that outlives them, such as stopping a job.
	background sync.WaitGroup
}

// New returns the API server.
func New(st *store.Store, q Queue, d Dispatcher, archives Archives, stats *livestats.Reader, opts Options, log hclog.Logger) *Server {
	if opts.MaxUploadBytes == 0 {
		opts.MaxUploadBytes = 100 << 20
	}
	if opts.MaxUnpackedBytes == 0 {
		opts.MaxUnpackedBytes = 512 << 20
	}
	if opts.MaxIngestBytes == 0 {
		opts.MaxIngestBytes = 32 << 20
	}
	opts.Accounts, opts.Mailer = accountDefaults(opts.Accounts, opts.Mailer, log)
	return &Server{store: st, queue: q, dispatcher: d, archives: archives, stats: stats, opts: opts, log: log.Named("api")}
}

// Wait blocks until the work that requests started in the background has ended.
func (s *Server) Wait() {
	s.background.Wait()
}

// Handler returns the API's root handler.
func (s *Server) Handler() http.Handler {
	return s.cors(s.routes())
}

func health(w http.ResponseWriter, _ *http.Request) (any, error) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "OK")
	return written, nil
}
