package main

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/google/go-cmp/cmp"

	"github.com/estela-go/estela-go/sdk/engine"
	"github.com/estela-go/estela-go/sdk/errdefs"
)

func isInvalid(err error) bool {
	return errors.Is(err, errdefs.ErrInvalid)
}

func TestCreateJobRequestBody(t *testing.T) {
	t.Parallel()
	d := newFakeDaemon(t)
	d.addImage(testImage)
	e := newTestEngine(t, d, map[string]any{"network": "estela", "labels": map[string]string{"team": "data", "estela/job": "overridden"}})

	createJob(t, e, sampleSpec("sj-7-proj"))

	if len(d.creates) != 1 || d.creates[0].Name != "sj-7-proj" {
		t.Fatalf("creates = %+v, want one create named sj-7-proj", d.creates)
	}
	var got container.CreateRequest
	if err := json.Unmarshal(d.creates[0].Body, &got); err != nil {
		t.Fatalf("decode create body: %v", err)
	}
	want := container.CreateRequest{
		Config: &container.Config{
			Image:      testImage,
			Entrypoint: []string{"estela-crawl"},
			Env: []string{
				`JOB_INFO={"spider":"books","key":"7.2.proj"}`,
				"MEMUSAGE_LIMIT_MB=1305",
				"REDIS_URL=redis://redis:6379/0",
			},
			Labels: map[string]string{
				"team":                    "data",
				"estela/project":          "proj",
				"estela/job":              "7",
				"io.estela-go.job-name":   "sj-7-proj",
				"io.estela-go.job-labels": `{"estela/job":"7","estela/project":"proj"}`,
			},
			User: "1000",
		},
		HostConfig: &container.HostConfig{
			NetworkMode:   "estela",
			RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyDisabled},
			CapDrop:       []string{"ALL"},
			SecurityOpt:   []string{"no-new-privileges"},
			Resources: container.Resources{
				NanoCPUs:          1_024_000_000,
				CPUShares:         524,
				Memory:            1536 << 20,
				MemorySwap:        1536 << 20,
				MemoryReservation: 1152 << 20,
			},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("create body mismatch (-want +got):\n%s", diff)
	}
}

// TestCreateJobWireNames checks the JSON keys of the host config against
// the Engine API reference, independently of the client's Go types.
func TestCreateJobWireNames(t *testing.T) {
	t.Parallel()
	d := newFakeDaemon(t)
	d.addImage(testImage)
	e := newTestEngine(t, d, nil)

	createJob(t, e, sampleSpec("sj-8-proj"))

	var body struct {
		HostConfig map[string]any
		User       string
		Entrypoint []string
	}
	if err := json.Unmarshal(d.creates[0].Body, &body); err != nil {
		t.Fatalf("decode create body: %v", err)
	}
	want := map[string]any{
		"NanoCpus":          float64(1_024_000_000),
		"CpuShares":         float64(524),
		"Memory":            float64(1536 << 20),
		"MemorySwap":        float64(1536 << 20),
		"MemoryReservation": float64(1152 << 20),
		"CapDrop":           []any{"ALL"},
		"SecurityOpt":       []any{"no-new-privileges"},
		"AutoRemove":        false,
		"RestartPolicy":     map[string]any{"Name": "no", "MaximumRetryCount": float64(0)},
	}
	got := map[string]any{}
	for key := range want {
		got[key] = body.HostConfig[key]
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("HostConfig wire fields mismatch (-want +got):\n%s", diff)
	}
	if body.User != "1000" {
		t.Errorf("User = %q, want the default run_as_user 1000", body.User)
	}
}

func TestJobContainerRejectsBadSpecs(t *testing.T) {
	t.Parallel()
	s := &settings{RunAsUser: "1000"}
	cases := map[string]func(spec *engine.JobSpec){
		"bad name":       func(spec *engine.JobSpec) { spec.Name = "-bad/name" },
		"no image":       func(spec *engine.JobSpec) { spec.ArtifactRef = "" },
		"no command":     func(spec *engine.JobSpec) { spec.Command = nil },
		"reserved label": func(spec *engine.JobSpec) { spec.Labels = map[string]string{labelJobName: "x"} },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			spec := sampleSpec("sj-1-proj")
			mutate(&spec)
			if _, err := jobContainer(s, spec); !isInvalid(err) {
				t.Errorf("jobContainer error = %v, want ErrInvalid", err)
			}
		})
	}
}
