package e2e

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
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

	st, err := store.Open(context.Background(), p.dbURL, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	job := &store.Job{ProjectID: pid, SpiderID: spiders["quotes"], DataStatus: "PERSISTENT", ResourceTier: "TINY",
		Args: []store.Arg{{Name: "base_url", Value: site.URL}}}
	if err := st.CreateJob(context.Background(), job); err != nil {
		t.Fatal(err)
	}

	got := waitForStatus(t, p, jobPath(pid, spiders["quotes"], job.JID), 2*3*time.Minute, "COMPLETED", "ERROR", "STOPPED")
	if got.JobStatus != "COMPLETED" || got.ItemCount != 12 {
		t.Errorf("job missing from the queue ended %s with %d items (%q), want COMPLETED with 12", got.JobStatus, got.ItemCount, got.ErrorReason)
	}
}

// pluginPID finds the process of a plugin binary that this test process started.
func pluginPID(t *testing.T, binary string) int {
	t.Helper()
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(fields) < 2 || fields[1] != strconv.Itoa(os.Getpid()) {
			continue
		}
		exe, err := os.Readlink("/proc/" + e.Name() + "/exe")
		if err == nil && filepath.Base(exe) == binary {
			return pid
		}
	}
	t.Fatalf("no %s process started by this test", binary)
	return 0
}

// An engine plugin killed while a job runs is started again; the job, which does not depend on
// the plugin process, still ends correctly, and later jobs run.
func TestEnginePluginKilledMidJob(t *testing.T) {
	site, release := slowSite(t)
	p := startPlatform(t)
	pid, spiders := deployedProject(t, p)
	jid := createJob(t, p, pid, spiders["quotes"], map[string]string{"base_url": site.URL})
	path := jobPath(pid, spiders["quotes"], jid)
	waitForStatus(t, p, path, 3*time.Minute, "RUNNING")

	enginePID := pluginPID(t, "estela-engine-local")
	if err := syscall.Kill(enginePID, syscall.SIGKILL); err != nil {
		t.Fatalf("kill engine plugin %d: %v", enginePID, err)
	}
	close(release)
	job := waitForStatus(t, p, path, 3*time.Minute, "COMPLETED", "ERROR", "STOPPED")
	if job.JobStatus != "COMPLETED" || job.ItemCount != 12 {
		t.Errorf("job whose engine plugin was killed ended %s with %d items (%q), want COMPLETED with 12", job.JobStatus, job.ItemCount, job.ErrorReason)
	}

	next := createJob(t, p, pid, spiders["quotes"], map[string]string{"base_url": site.URL})
	job = waitForStatus(t, p, jobPath(pid, spiders["quotes"], next), 3*time.Minute, "COMPLETED", "ERROR", "STOPPED")
	if job.JobStatus != "COMPLETED" {
		t.Errorf("job after the engine restart ended %s (%q), want COMPLETED", job.JobStatus, job.ErrorReason)
	}
	if newPID := pluginPID(t, "estela-engine-local"); newPID == enginePID {
		t.Errorf("engine plugin pid %d did not change", newPID)
	}
}
