package main

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/estela-go/estela-go/sdk/pluginapi"
)

// settings is the plugin's validated settings block.
type settings struct {
	// JobDuration is the run time of a job whose command sets none.
	JobDuration time.Duration
	// CPUMillis and MemoryBytes are what Capacity reports as allocatable.
	CPUMillis   int64
	MemoryBytes int64
}

// rawSettings is the settings block as the host sends it. Every setting is
// optional: an empty block makes jobs finish at once and Capacity report
// nothing allocatable.
type rawSettings struct {
	// JobDuration is a Go duration string such as "2s".
	JobDuration string `json:"job_duration"`
	CPUMillis   int64  `json:"cpu_millis"`
	MemoryBytes int64  `json:"memory_bytes"`
}

// parseSettings decodes and validates raw. It returns nil when resp received
// an error diagnostic.
func parseSettings(raw []byte, resp *pluginapi.ConfigureResponse) *settings {
	var in rawSettings
	if len(bytes.TrimSpace(raw)) > 0 {
		decoder := json.NewDecoder(bytes.NewReader(raw))
		decoder.DisallowUnknownFields()
		if err := decoder.Decode(&in); err != nil {
			resp.AddError("", "invalid settings block", err.Error()+"; known settings: job_duration, cpu_millis, memory_bytes")
			return nil
		}
	}
	s := &settings{CPUMillis: in.CPUMillis, MemoryBytes: in.MemoryBytes}
	if in.JobDuration != "" {
		d, err := time.ParseDuration(in.JobDuration)
		switch {
		case err != nil:
			resp.AddError("job_duration", "invalid duration", `use a Go duration such as "2s": `+err.Error())
		case d < 0:
			resp.AddError("job_duration", "must not be negative", "")
		}
		s.JobDuration = d
	}
	if s.CPUMillis < 0 {
		resp.AddError("cpu_millis", "must not be negative", "")
	}
	if s.MemoryBytes < 0 {
		resp.AddError("memory_bytes", "must not be negative", "")
	}
	if resp.HasErrors() {
		return nil
	}
	return s
}
