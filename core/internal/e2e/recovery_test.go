package e2e

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/estela-go/estela-go/core/internal/store"
)

// A job that is in Postgres but never reached the Redis queue, as after a Redis restart, is
// found by the reconcile and runs to the end.
func TestJobMissingFromQueueRuns(t *testing.T) {
	site := httptest.NewServer(http.FileServer(http.Dir("testdata/site")))
	defer site.Close()
	p := startPlatform(t)
	pid, spiders := deployedProject(t, p)

	st, err := store.Open(context.Background(), p.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	job := &store.Job{ProjectID: pid, SpiderID: spiders["quotes"], DataStatus: "PERSISTENT", ResourceTier: "TINY",
		Args: []store.Arg{{Name: "base_url", Value: site.URL}}}
	if err := st.CreateJob(context.Background(), job); err != nil {
		t.Fatal(err)
	}

	got := waitForStatus(t, p, jobPath(pid, spiders["quotes"], job.JID), 2*time.Minute, "COMPLETED", "ERROR", "STOPPED")
	if got.JobStatus != "COMPLETED" || got.ItemCount != 12 {
		t.Errorf("job missing from the queue ended %s with %d items (%q), want COMPLETED with 12", got.JobStatus, got.ItemCount, got.ErrorReason)
	}
}
