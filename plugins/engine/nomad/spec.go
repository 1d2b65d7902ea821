package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"strings"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/estela-go/estela-go/sdk/engine"
	"github.com/estela-go/estela-go/sdk/errdefs"
)

// Names inside each job the plugin registers: one group with one task.
const (
	groupName = "job"
	taskName  = "job"
)

// Job meta. Nomad interpolates meta keys as ${NOMAD_META_<key>}, which
// needs identifier-like keys. So each job label is also written with every
// character outside [A-Za-z0-9_-] replaced by '_': "estela/project" becomes
// "estela_project". Labels whose keys differ only in those characters
// collide there, so the exact labels live as a JSON object under
// metaLabels, which ListJobs and GetJob read. Its presence also marks a
// job as one this plugin registered.
const (
	metaPrefix = "estela_go_"
	metaLabels = metaPrefix + "labels"
)

var (
	jobNamePattern = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$`)
	metaKeyPattern = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	metaUnsafe     = regexp.MustCompile(`[^A-Za-z0-9_-]`)
)

// mib is the unit of Nomad's MemoryMB.
const mib = 1 << 20

// nomadJob returns the batch job for spec: one group of count 1 that Nomad
// neither restarts nor reschedules, because a spider run is not retried
// behind the host's back. The task runs spec.Command with the docker
// driver: the first word replaces the image's ENTRYPOINT, as a Kubernetes
// container's `command` does, and the rest are its arguments.
func nomadJob(s *settings, spec engine.JobSpec) (*api.Job, error) {
	if err := validateSpec(spec); err != nil {
		return nil, err
	}
	meta, err := jobMeta(s.Meta, spec.Labels)
	if err != nil {
		return nil, err
	}
	group := &api.TaskGroup{
		Name:             new(groupName),
		Count:            new(1),
		RestartPolicy:    &api.RestartPolicy{Attempts: new(0), Mode: new(api.RestartPolicyModeFail)},
		ReschedulePolicy: &api.ReschedulePolicy{Attempts: new(0), Unlimited: new(false)},
		Tasks:            []*api.Task{jobTask(s, spec)},
	}
	if spec.MaxRuntime > 0 {
		// NOTE: max_run_duration is honoured only by Nomad versions that
		// know it; older servers ignore the field and run without limit.
		group.MaxRunDuration = new(spec.MaxRuntime)
	}
	job := &api.Job{
		ID:          new(spec.Name),
		Name:        new(spec.Name),
		Type:        new(api.JobTypeBatch),
		Datacenters: s.Datacenters,
		Meta:        meta,
		TaskGroups:  []*api.TaskGroup{group},
	}
	if s.Namespace != "" {
		job.Namespace = new(s.Namespace)
	}
	if s.Region != "" {
		job.Region = new(s.Region)
	}
	return job, nil
}

func jobTask(s *settings, spec engine.JobSpec) *api.Task {
	config := map[string]any{
		"image":        spec.ArtifactRef,
		"entrypoint":   spec.Command[:1],
		"cap_drop":     []string{"all"},
		"security_opt": []string{"no-new-privileges"},
	}
	if len(spec.Command) > 1 {
		config["args"] = spec.Command[1:]
	}
	return &api.Task{
		Name:        taskName,
		Driver:      "docker",
		User:        s.RunAsUser,
		Config:      config,
		Env:         spec.Env,
		Resources:   taskResources(s, spec.Resources),
		KillTimeout: new(s.StopGrace),
	}
}

// taskResources converts the job's resources to Nomad's. Nomad reserves CPU
// in MHz, so the CPU request (the limit when no request is set) becomes
// millis × mhz_per_core / 1000, rounded up: 512 millis at 2000 MHz per core
// reserve 1024 MHz. Memory is a hard limit in Nomad, so MemoryMB is the
// memory limit in MiB, rounded up. Unset resources keep Nomad's defaults.
func taskResources(s *settings, res engine.Resources) *api.Resources {
	out := &api.Resources{}
	millis := res.CPURequestMillis
	if millis == 0 {
		millis = res.CPULimitMillis
	}
	if millis > 0 {
		out.CPU = new(int(ceilDiv(millis*int64(s.MHzPerCore), 1000)))
	}
	if res.MemoryLimitBytes > 0 {
		out.MemoryMB = new(int(ceilDiv(res.MemoryLimitBytes, mib)))
	}
	return out
}

func ceilDiv(a, b int64) int64 {
	return (a + b - 1) / b
}

func validateSpec(spec engine.JobSpec) error {
	if !jobNamePattern.MatchString(spec.Name) {
		return errdefs.Invalid("invalid job name %q: use up to 128 letters, digits, '.', '_' and '-', starting with a letter or digit", spec.Name)
	}
	if spec.ArtifactRef == "" {
		return errdefs.Invalid("job %s has no artifact ref: set it to the image to run", spec.Name)
	}
	if len(spec.Command) == 0 || spec.Command[0] == "" {
		return errdefs.Invalid("job %s has no command", spec.Name)
	}
	if spec.MaxRuntime < 0 || spec.MaxRuntime > 0 && spec.MaxRuntime < time.Second {
		return errdefs.Invalid("job %s has the maximum runtime %s: use 0 for none or at least 1s", spec.Name, spec.MaxRuntime)
	}
	return nil
}

// jobMeta returns the configured meta, the labels under sanitized keys and
// the exact labels as JSON, each overriding the one before.
func jobMeta(configured, labels map[string]string) (map[string]string, error) {
	exact, err := json.Marshal(orEmpty(labels))
	if err != nil {
		return nil, fmt.Errorf("encode job labels: %w", err)
	}
	meta := maps.Clone(configured)
	if meta == nil {
		meta = map[string]string{}
	}
	for key, value := range labels {
		meta[metaKey(key)] = value
	}
	meta[metaLabels] = string(exact)
	return meta, nil
}

// metaKey returns a label key as a Nomad meta key.
func metaKey(label string) string {
	key := metaUnsafe.ReplaceAllString(label, "_")
	if strings.HasPrefix(key, metaPrefix) {
		// Keep labels away from the plugin's own keys.
		key = "label_" + key
	}
	return key
}

// jobLabels returns the labels a job was registered with, and false for a
// job the plugin did not register.
func jobLabels(meta map[string]string) (map[string]string, bool) {
	raw, ok := meta[metaLabels]
	if !ok {
		return nil, false
	}
	labels := map[string]string{}
	if err := json.Unmarshal([]byte(raw), &labels); err != nil {
		return nil, false
	}
	return labels, true
}

func orEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func containsLabels(labels, selector map[string]string) bool {
	for key, value := range selector {
		if got, ok := labels[key]; !ok || got != value {
			return false
		}
	}
	return true
}
