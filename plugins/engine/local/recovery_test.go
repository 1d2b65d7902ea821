package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/estela-go/estela-go/sdk/engine"
)

// startOrphan starts a process in its own group, standing in for a job
// started by an earlier run of the plugin, and returns its pid and start
// time. The test reaps it.
func startOrphan(t *testing.T) (int, uint64) {
	t.Helper()
	cmd := exec.Command("sleep", "30")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start orphan: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	})
	_, ticks, err := readProcStat(cmd.Process.Pid)
	if err != nil {
		t.Fatalf("read orphan start time: %v", err)
	}
	return cmd.Process.Pid, ticks
}

func writeTestRecord(t *testing.T, dataDir string, rec jobRecord) {
	t.Helper()
	dir := filepath.Join(dataDir, "jobs")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := writeRecord(filepath.Join(dir, rec.Name+".json"), rec); err != nil {
		t.Fatalf("write record: %v", err)
	}
}

func TestRestartRecoversJobs(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	startedAt := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	livePID, liveTicks := startOrphan(t)
	stopPID, stopTicks := startOrphan(t)
	_, ownTicks, err := readProcStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	records := []jobRecord{
		{Name: "alive", PID: livePID, ProcessStartTicks: liveTicks, State: engine.JobRunning, StartedAt: startedAt},
		{Name: "to-stop", PID: stopPID, ProcessStartTicks: stopTicks, State: engine.JobRunning, StartedAt: startedAt},
		{Name: "gone", PID: 1 << 30, ProcessStartTicks: 1, State: engine.JobRunning, StartedAt: startedAt},
		{Name: "pid-reused", PID: os.Getpid(), ProcessStartTicks: ownTicks + 1, State: engine.JobRunning, StartedAt: startedAt},
		{Name: "done", PID: 1 << 30, State: engine.JobSucceeded, Reason: "exited with code 0", StartedAt: startedAt, FinishedAt: startedAt.Add(time.Minute)},
	}
	for _, rec := range records {
		writeTestRecord(t, dataDir, rec)
	}
	e := configureEngine(t, dataDir)

	tests := []struct {
		name   string
		state  engine.JobState
		reason string
	}{
		{"alive", engine.JobRunning, ""},
		{"gone", engine.JobFailed, reasonUnknownExit},
		{"pid-reused", engine.JobFailed, reasonUnknownExit},
		{"done", engine.JobSucceeded, "exited with code 0"},
	}
	for _, tt := range tests {
		resp, err := e.GetJob(t.Context(), &engine.GetJobRequest{Name: tt.name})
		if err != nil {
			t.Fatalf("GetJob %s: %v", tt.name, err)
		}
		if resp.Job.State != tt.state || resp.Job.Reason != tt.reason {
			t.Errorf("%s = %s %q, want %s %q", tt.name, resp.Job.State, resp.Job.Reason, tt.state, tt.reason)
		}
	}

	stopped, err := e.StopJob(t.Context(), &engine.StopJobRequest{Name: "to-stop", Grace: time.Second})
	if err != nil {
		t.Fatalf("StopJob: %v", err)
	}
	if stopped.Job.State != engine.JobStopped {
		t.Errorf("adopted job after stop = %s %q, want STOPPED", stopped.Job.State, stopped.Job.Reason)
	}

	if err := syscall.Kill(livePID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	got := waitFinal(t, e, "alive")
	if got.State != engine.JobFailed || got.Reason != reasonUnknownExit {
		t.Errorf("adopted job after its process died = %s %q, want FAILED with unknown exit", got.State, got.Reason)
	}
	rec, err := readRecord(filepath.Join(dataDir, "jobs", "alive.json"))
	if err != nil || rec.State != engine.JobFailed {
		t.Errorf("stored record = %+v, %v; want state FAILED", rec, err)
	}
}

func TestReadRecordsSkipsCorruptFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := writeRecord(filepath.Join(dir, "good.json"), jobRecord{Name: "good", State: engine.JobSucceeded}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bad.json"), []byte("{"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := writeRecord(filepath.Join(dir, "renamed.json"), jobRecord{Name: "other"}); err != nil {
		t.Fatal(err)
	}
	records, errs := readRecords(dir)
	if len(records) != 1 || records[0].Name != "good" {
		t.Errorf("records = %+v, want only good", records)
	}
	if len(errs) != 2 {
		t.Errorf("got %d errors, want 2: %v", len(errs), errors.Join(errs...))
	}
}
