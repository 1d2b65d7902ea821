package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/docker/docker/api/types/container"

	"github.com/estela-go/estela-go/sdk/engine"
	"github.com/estela-go/estela-go/sdk/errdefs"
)

// Labels the plugin puts on what it creates. Settings may not use the prefix.
const (
	labelPrefix = "io.estela-go."
	// labelJobName marks a job container and holds the job name, so that a
	// lookup by name never adopts a container the plugin did not create.
	labelJobName = labelPrefix + "job-name"
	// labelJobLabels holds the job's own labels as a JSON object, so that
	// JobStatus.Labels returns exactly what CreateJob received even when a
	// configured label has the same key.
	labelJobLabels = labelPrefix + "job-labels"
	// labelDeploy marks a deploy report container with "<pid>.<did>".
	labelDeploy = labelPrefix + "deploy"
	// labelMaxRuntime holds the job's maximum runtime as a Go duration.
	labelMaxRuntime = labelPrefix + "max-runtime"
)

// containerNamePattern is the Engine API's rule for container names.
var containerNamePattern = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,199}$`)

// securityOptions apply to every container the plugin starts.
var securityOptions = []string{"no-new-privileges"}

// containerRequest is what ContainerCreate needs.
type containerRequest struct {
	Name   string
	Config *container.Config
	Host   *container.HostConfig
}

// jobContainer returns the container for spec. The command replaces the
// image's ENTRYPOINT and CMD, as a Kubernetes container's `command` does, so
// an image with its own ENTRYPOINT still runs the job's command.
func jobContainer(s *settings, spec engine.JobSpec) (containerRequest, error) {
	if err := validateSpec(spec); err != nil {
		return containerRequest{}, err
	}
	labels, err := containerLabels(s, spec)
	if err != nil {
		return containerRequest{}, err
	}

	var args []string
	if len(spec.Command) > 1 {
		args = spec.Command[1:]
	}
	config := &container.Config{
		Image:      spec.ArtifactRef,
		Entrypoint: spec.Command[:1],
		Cmd:        args,
		Env:        envList(spec.Env),
		Labels:     labels,
		User:       s.RunAsUser,
	}
	return containerRequest{Name: spec.Name, Config: config, Host: hostConfig(s, spec.Resources)}, nil
}

// containerLabels returns the configured labels, the job's labels over them
// and the plugin's own labels.
func containerLabels(s *settings, spec engine.JobSpec) (map[string]string, error) {
	specLabels, err := json.Marshal(orEmpty(spec.Labels))
	if err != nil {
		return nil, fmt.Errorf("encode job labels: %w", err)
	}
	labels := maps.Clone(s.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	maps.Copy(labels, spec.Labels)
	labels[labelJobName] = spec.Name
	labels[labelJobLabels] = string(specLabels)
	if spec.MaxRuntime > 0 {
		labels[labelMaxRuntime] = spec.MaxRuntime.String()
	}
	return labels, nil
}

func validateSpec(spec engine.JobSpec) error {
	if !containerNamePattern.MatchString(spec.Name) {
		return errdefs.Invalid("invalid job name %q: use up to 200 letters, digits, '.', '_' and '-', starting with a letter or digit", spec.Name)
	}
	if spec.ArtifactRef == "" {
		return errdefs.Invalid("job %s has no artifact ref: set it to the image to run", spec.Name)
	}
	if len(spec.Command) == 0 || spec.Command[0] == "" {
		return errdefs.Invalid("job %s has no command", spec.Name)
	}
	if spec.MaxRuntime < 0 {
		return errdefs.Invalid("job %s has the negative maximum runtime %s: use 0 for none", spec.Name, spec.MaxRuntime)
	}
	for key := range spec.Labels {
		if key == "" || strings.HasPrefix(key, labelPrefix) {
			return errdefs.Invalid("job %s has the label key %q: keys must be non-empty and not start with %q", spec.Name, key, labelPrefix)
		}
	}
	return nil
}

// hostConfig turns the job's resources into cgroup limits. Swap is disabled
// (MemorySwap equals Memory) so the memory limit is a hard one, as on
// Kubernetes. The CPU request becomes relative CPU shares with the
// Kubernetes conversion (1000 millis = 1024 shares).
func hostConfig(s *settings, res engine.Resources) *container.HostConfig {
	hc := &container.HostConfig{
		NetworkMode:   container.NetworkMode(s.Network),
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyDisabled},
		AutoRemove:    false,
		CapDrop:       []string{"ALL"},
		SecurityOpt:   securityOptions,
	}
	hc.NanoCPUs = res.CPULimitMillis * 1_000_000
	if res.CPURequestMillis > 0 {
		hc.CPUShares = max(res.CPURequestMillis*1024/1000, 2)
	}
	if res.MemoryLimitBytes > 0 {
		hc.Memory = res.MemoryLimitBytes
		hc.MemorySwap = res.MemoryLimitBytes
	}
	hc.MemoryReservation = res.MemoryRequestBytes
	return hc
}

// envList returns env as KEY=value entries sorted by key, so the same spec
// always gives the same request.
func envList(env map[string]string) []string {
	list := make([]string, 0, len(env))
	for _, key := range slices.Sorted(maps.Keys(env)) {
		list = append(list, key+"="+env[key])
	}
	return list
}

func orEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// jobLabels returns the job's own labels from a container's labels.
func jobLabels(containerLabels map[string]string) map[string]string {
	labels := map[string]string{}
	if raw, ok := containerLabels[labelJobLabels]; ok && json.Unmarshal([]byte(raw), &labels) == nil {
		return labels
	}
	// A container without a readable job-labels label still has its labels:
	// return them without the plugin's own.
	for key, value := range containerLabels {
		if !strings.HasPrefix(key, labelPrefix) {
			labels[key] = value
		}
	}
	return labels
}
