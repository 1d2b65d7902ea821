package api

import (
	"context"

	"github.com/estela-go/estela-go/core/internal/lifecycle"
	"github.com/estela-go/estela-go/core/internal/store"
)

// StopAsUser stops job as a user's request does, from the job as the request read it.
func (s *Server) StopAsUser(ctx context.Context, job *store.Job) (*store.Job, error) {
	stopped := lifecycle.Stopped
	_, after, err := s.applyJobUpdate(ctx, job, store.JobUpdate{FromStatus: job.Status, Status: &stopped}, lifecycle.User)
	return after, err
}

// RouteForTest is one route of the table, for tests outside the package.
type RouteForTest struct {
	Method, Path string
	NeedsToken   bool
}

// RoutesForTest returns the route table.
func (s *Server) RoutesForTest() []RouteForTest {
	var out []RouteForTest
	for _, rt := range s.table() {
		out = append(out, RouteForTest{Method: rt.method, Path: openAPIPath(rt.path), NeedsToken: rt.access == token})
	}
	return out
}
