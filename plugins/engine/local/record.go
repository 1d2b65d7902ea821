package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/estela-go/estela-go/sdk/engine"
)

// jobRecord is the content of jobs/<name>.json, from which a restarted
// plugin finds its jobs again. It holds no environment values,
// because those contain tokens.
type jobRecord struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
	PID    int               `json:"pid"`
	// ProcessStartTicks is field 22 of /proc/<pid>/stat when the job
	// started. It distinguishes the job's process from a later one with the
	// same pid.
	ProcessStartTicks uint64          `json:"process_start_ticks"`
	State             engine.JobState `json:"state"`
	Reason            string          `json:"reason,omitempty"`
	ExitCode          int32           `json:"exit_code"`
	StartedAt         time.Time       `json:"started_at"`
	FinishedAt        time.Time       `json:"finished_at,omitzero"`
	// MaxRuntime is zero for no limit.
	MaxRuntime    time.Duration `json:"max_runtime,omitempty"`
	StopRequested bool          `json:"stop_requested,omitempty"`
}

// writeRecord replaces path with rec through a temporary file and a rename,
// so a crash leaves either the old record or the new one.
func writeRecord(path string, rec jobRecord) error {
	data, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if closeErr := tmp.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// readRecords returns the records in dir. Unreadable records are returned
// as errors beside the others, so one corrupt file does not hide every job.
func readRecords(dir string) ([]jobRecord, []error) {
	matches, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, []error{err}
	}
	var records []jobRecord
	var errs []error
	for _, path := range matches {
		if strings.HasPrefix(filepath.Base(path), ".") {
			continue
		}
		rec, err := readRecord(path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		records = append(records, rec)
	}
	return records, errs
}

func readRecord(path string) (jobRecord, error) {
	var rec jobRecord
	data, err := os.ReadFile(path)
	if err != nil {
		return rec, err
	}
	if err := json.Unmarshal(data, &rec); err != nil {
		return rec, fmt.Errorf("parse job record %s: %w", path, err)
	}
	if rec.Name+".json" != filepath.Base(path) {
		return rec, errors.New("job record " + path + " names another job: " + rec.Name)
	}
	return rec, nil
}
