package main

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/nomad/api"

	"github.com/estela-go/estela-go/sdk/engine"
)

func TestCreateJobRegisterBody(t *testing.T) {
	t.Parallel()
	a := newFakeAgent(t)
	e := newTestEngine(t, a, map[string]any{
		"region": "eu", "datacenters": []string{"dc1", "dc2"}, "meta": map[string]string{"team": "data"},
	})

	createJob(t, e, sampleSpec("sj-7-proj"))

	if len(a.registers) != 1 {
		t.Fatalf("registers = %d, want 1", len(a.registers))
	}
	var got api.JobRegisterRequest
	if err := json.Unmarshal(a.registers[0].Body, &got); err != nil {
		t.Fatalf("decode register body: %v", err)
	}
	want := api.JobRegisterRequest{
		EnforceIndex:   true,
		JobModifyIndex: 0,
		Job: &api.Job{
			ID:          new("sj-7-proj"),
			Name:        new("sj-7-proj"),
			Type:        new("batch"),
			Namespace:   new("estela"),
			Region:      new("eu"),
			Datacenters: []string{"dc1", "dc2"},
			Meta: map[string]string{
				"team":                         "data",
				"app_kubernetes_io_managed-by": "estela-go",
				"estela_project":               "proj",
				"estela_job":                   "7",
				"estela_go_labels":             `{"app.kubernetes.io/managed-by":"estela-go","estela/job":"7","estela/project":"proj"}`,
			},
			TaskGroups: []*api.TaskGroup{{
				Name:             new("job"),
				Count:            new(1),
				RestartPolicy:    &api.RestartPolicy{Attempts: new(0), Mode: new("fail")},
				ReschedulePolicy: &api.ReschedulePolicy{Attempts: new(0), Unlimited: new(false)},
				Tasks: []*api.Task{{
					Name:   "job",
					Driver: "docker",
					User:   "1000",
					Config: map[string]any{
						"image":        testImage,
						"entrypoint":   []any{"estela-crawl"},
						"cap_drop":     []any{"all"},
						"security_opt": []any{"no-new-privileges"},
					},
					Env: map[string]string{
						"JOB_INFO":          `{"spider":"books","key":"7.2.proj"}`,
						"REDIS_URL":         "redis://redis:6379/0",
						"MEMUSAGE_LIMIT_MB": "1305",
					},
					Resources:   &api.Resources{CPU: new(1024), MemoryMB: new(1536)},
					KillTimeout: new(5 * time.Second),
				}},
			}},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("register body mismatch (-want +got):\n%s", diff)
	}
	if token := a.registers[0].Header.Get("X-Nomad-Token"); token != "secret-token" {
		t.Errorf("X-Nomad-Token = %q, want the configured token", token)
	}
	if ns := a.registers[0].Query.Get("namespace"); ns != "estela" {
		t.Errorf("namespace query = %q, want estela", ns)
	}
}

func TestTaskResources(t *testing.T) {
	t.Parallel()
	s := &settings{MHzPerCore: 2400}
	cases := []struct {
		name string
		in   engine.Resources
		want *api.Resources
	}{
		{"request wins", engine.Resources{CPURequestMillis: 500, CPULimitMillis: 1000}, &api.Resources{CPU: new(1200)}},
		{"limit without request", engine.Resources{CPULimitMillis: 250}, &api.Resources{CPU: new(600)}},
		{"rounded up", engine.Resources{CPURequestMillis: 1, MemoryLimitBytes: 1}, &api.Resources{CPU: new(3), MemoryMB: new(1)}},
		{"memory limit", engine.Resources{MemoryRequestBytes: 96 << 20, MemoryLimitBytes: 128 << 20}, &api.Resources{MemoryMB: new(128)}},
		{"unset", engine.Resources{}, &api.Resources{}},
	}
	for _, c := range cases {
		if diff := cmp.Diff(c.want, taskResources(s, c.in)); diff != "" {
			t.Errorf("%s: resources mismatch (-want +got):\n%s", c.name, diff)
		}
	}
}

func TestNomadJobArgsAndMaxRuntime(t *testing.T) {
	t.Parallel()
	s := &settings{MHzPerCore: 2000, Datacenters: []string{"dc1"}, RunAsUser: "1000", StopGrace: time.Second}
	spec := shellSpec("job-a", "exit 0", nil)
	spec.MaxRuntime = time.Hour

	job, err := nomadJob(s, spec)
	if err != nil {
		t.Fatalf("nomadJob: %v", err)
	}

	task := job.TaskGroups[0].Tasks[0]
	if diff := cmp.Diff([]string{"sh"}, task.Config["entrypoint"]); diff != "" {
		t.Errorf("entrypoint mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"-c", "exit 0"}, task.Config["args"]); diff != "" {
		t.Errorf("args mismatch (-want +got):\n%s", diff)
	}
	if got := deref(job.TaskGroups[0].MaxRunDuration); got != time.Hour {
		t.Errorf("max_run_duration = %s, want 1h", got)
	}
	if job.Namespace != nil || job.Region != nil {
		t.Errorf("namespace %v region %v, want both unset when the settings leave them empty", job.Namespace, job.Region)
	}
}

func TestMetaKey(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"estela/project":               "estela_project",
		"app.kubernetes.io/managed-by": "app_kubernetes_io_managed-by",
		"plain_key-1":                  "plain_key-1",
		"estela_go_labels":             "label_estela_go_labels",
		"a b":                          "a_b",
	}
	for in, want := range cases {
		if got := metaKey(in); got != want {
			t.Errorf("metaKey(%q) = %q, want %q", in, got, want)
		}
	}
}
