package main

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"io"
	"path"
	"regexp"
	"slices"
	"sync"

	"github.com/hashicorp/go-hclog"

	"github.com/estela-go/estela-go/sdk/engine"
	"github.com/estela-go/estela-go/sdk/errdefs"
	"github.com/estela-go/estela-go/sdk/pluginapi"
)

// version is this plugin's version, reported by GetInfo.
const version = "0.1.0"

// noopEngine keeps its jobs in memory. One mutex guards every field below
// it; no method sleeps or does I/O while holding it.
type noopEngine struct {
	logger hclog.Logger

	mu       sync.Mutex
	settings settings
	jobs     map[string]*job
	watchers map[*watcher]struct{}
	// requested sums the resources requested by the jobs still running.
	requested engine.Resources
}

var (
	_ engine.Engine           = (*noopEngine)(nil)
	_ engine.JobWatcher       = (*noopEngine)(nil)
	_ engine.CapacityReporter = (*noopEngine)(nil)
)

func newEngine(logger hclog.Logger) *noopEngine {
	return &noopEngine{
		logger:   logger.Named("engine-noop"),
		jobs:     map[string]*job{},
		watchers: map[*watcher]struct{}{},
	}
}

func (e *noopEngine) GetInfo(context.Context) (*pluginapi.Info, error) {
	return &pluginapi.Info{
		Name:         "noop",
		Version:      version,
		APIVersions:  []int32{pluginapi.ProtocolVersion},
		Capabilities: []string{engine.CapabilityWatchJobs, engine.CapabilityCapacity},
	}, nil
}

// Configure applies valid settings and keeps the previous ones otherwise.
// New settings apply to jobs created afterwards.
func (e *noopEngine) Configure(_ context.Context, req *pluginapi.ConfigureRequest) (*pluginapi.ConfigureResponse, error) {
	resp := &pluginapi.ConfigureResponse{}
	s := parseSettings(req.Config, resp)
	if s == nil {
		e.logger.Warn("settings rejected", "error", resp.Err())
		return resp, nil
	}
	e.mu.Lock()
	e.settings = *s
	e.mu.Unlock()
	e.logger.Info("settings applied", "job_duration", s.JobDuration.String(), "cpu_millis", s.CPUMillis, "memory_bytes", s.MemoryBytes)
	return resp, nil
}

// spiderName matches a `name = "..."` line indented by one level (four
// spaces or a tab), the usual form of a Scrapy spider's class attribute.
// Assignments inside methods are indented deeper and do not match.
var spiderName = regexp.MustCompile(`(?m)^(?:    |\t)name\s*=\s*["']([^"']+)["']`)

// maxSpiderFileBytes bounds how much of one spider file PrepareArtifact reads.
const maxSpiderFileBytes = 1 << 20

// PrepareArtifact checks that the archive is a zip with a scrapy.cfg and
// lists its spiders without running Python: it reads the `name = "..."`
// attributes of the .py files in folders named spiders. The artifact itself
// is not kept, since noop jobs run nothing.
func (e *noopEngine) PrepareArtifact(_ context.Context, req *engine.PrepareArtifactRequest) (*engine.PrepareArtifactResponse, error) {
	// NOTE: the whole archive is held in memory while it is read; the host's
	// upload limit (max_upload_bytes) bounds its size.
	data, err := io.ReadAll(req.Archive)
	if err != nil {
		return nil, fmt.Errorf("read archive of project %s deploy %d: %w", req.ProjectID, req.DeployID, err)
	}
	archive, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, errdefs.Invalid("archive of project %s deploy %d is not a zip file: %v", req.ProjectID, req.DeployID, err)
	}
	spiders, hasConfig, err := scanArchive(archive)
	if err != nil {
		return nil, err
	}
	if !hasConfig {
		return nil, errdefs.Invalid("archive of project %s deploy %d has no scrapy.cfg, so it is not a Scrapy project", req.ProjectID, req.DeployID)
	}
	return &engine.PrepareArtifactResponse{
		ArtifactRef: fmt.Sprintf("noop:%s/%d", req.ProjectID, req.DeployID),
		ProjectType: "scrapy",
		Spiders:     spiders,
	}, nil
}

// scanArchive returns the sorted spider names of the archive and whether it
// contains a scrapy.cfg.
func scanArchive(archive *zip.Reader) (spiders []string, hasConfig bool, err error) {
	spiders = []string{}
	for _, f := range archive.File {
		if path.Base(f.Name) == "scrapy.cfg" {
			hasConfig = true
		}
		if path.Ext(f.Name) != ".py" || path.Base(path.Dir(f.Name)) != "spiders" {
			continue
		}
		names, err := spiderNames(f)
		if err != nil {
			return nil, false, err
		}
		for _, name := range names {
			if !slices.Contains(spiders, name) {
				spiders = append(spiders, name)
			}
		}
	}
	slices.Sort(spiders)
	return spiders, hasConfig, nil
}

func spiderNames(f *zip.File) ([]string, error) {
	r, err := f.Open()
	if err != nil {
		return nil, errdefs.Invalid("open %s in the archive: %v", f.Name, err)
	}
	defer r.Close()
	source, err := io.ReadAll(io.LimitReader(r, maxSpiderFileBytes))
	if err != nil {
		return nil, errdefs.Invalid("read %s in the archive: %v", f.Name, err)
	}
	var names []string
	for _, m := range spiderName.FindAllSubmatch(source, -1) {
		names = append(names, string(m[1]))
	}
	return names, nil
}

// Capacity reports one node with the allocatable resources of the settings,
// and the resources requested by the jobs still running.
func (e *noopEngine) Capacity(context.Context, *engine.CapacityRequest) (*engine.CapacityResponse, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return &engine.CapacityResponse{
		Nodes:                  1,
		AllocatableCPUMillis:   e.settings.CPUMillis,
		AllocatableMemoryBytes: e.settings.MemoryBytes,
		RequestedCPUMillis:     e.requested.CPURequestMillis,
		RequestedMemoryBytes:   e.requested.MemoryRequestBytes,
	}, nil
}
