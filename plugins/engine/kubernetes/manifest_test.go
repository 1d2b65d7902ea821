package main

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"

	"github.com/estela-go/estela-go/sdk/engine"
	"github.com/estela-go/estela-go/sdk/errdefs"
)

// sampleSpec is a spider job as the dispatcher sends it: estela's labels,
// the TINY tier and an environment in no particular order.
func sampleSpec() engine.JobSpec {
	return engine.JobSpec{
		Name:        "sj-12-7",
		ArtifactRef: "registry.example.com/estela:estela_7_d3",
		Command:     []string{"estela-crawl"},
		Env: map[string]string{
			"REDIS_URL":         "redis://redis:6379/0",
			"JOB_INFO":          `{"spider": "books", "key": "12.3.7"}`,
			"MEMUSAGE_LIMIT_MB": "108",
		},
		Labels: map[string]string{
			labelManagedBy:   managedBy,
			"estela/project": "7",
			"estela/spider":  "3",
			"estela/job":     "12",
		},
		Resources: engine.Resources{CPURequestMillis: 128, CPULimitMillis: 256, MemoryRequestBytes: 96 << 20, MemoryLimitBytes: 128 << 20},
	}
}

// estelaJob is the Job estela's Kubernetes engine creates for sampleSpec,
// plus the labels and the labels annotation of this plugin.
func estelaJob() *batchv1.Job {
	podLabels := map[string]string{labelManagedBy: managedBy, "estela/project": "7", "estela/spider": "3", "estela/job": "12"}
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name:      "sj-12-7",
			Namespace: "default",
			Labels:    podLabels,
			Annotations: map[string]string{
				annotationLabels: `{"app.kubernetes.io/managed-by":"estela-go","estela/job":"12","estela/project":"7","estela/spider":"3"}`,
			},
		},
		Spec: batchv1.JobSpec{
			BackoffLimit:            ptr.To[int32](0),
			TTLSecondsAfterFinished: ptr.To[int32](86400),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels},
				Spec: corev1.PodSpec{
					RestartPolicy:    corev1.RestartPolicyNever,
					ImagePullSecrets: []corev1.LocalObjectReference{{Name: "regcred"}},
					SecurityContext:  &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](1000)},
					Containers: []corev1.Container{{
						Name:    "jobcontainer",
						Image:   "registry.example.com/estela:estela_7_d3",
						Command: []string{"estela-crawl"},
						Env: []corev1.EnvVar{
							{Name: "JOB_INFO", Value: `{"spider": "books", "key": "12.3.7"}`},
							{Name: "MEMUSAGE_LIMIT_MB", Value: "108"},
							{Name: "REDIS_URL", Value: "redis://redis:6379/0"},
						},
						Resources: corev1.ResourceRequirements{
							Requests: resourceListOf("128m", "96Mi"),
							Limits:   resourceListOf("256m", "128Mi"),
						},
						ImagePullPolicy: corev1.PullAlways,
						SecurityContext: &corev1.SecurityContext{
							AllowPrivilegeEscalation: ptr.To(false),
							Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
						},
					}},
				},
			},
		},
	}
}

func TestCreateJobManifest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		settings map[string]any
		spec     func() engine.JobSpec
		want     func() *batchv1.Job
	}{
		{"estela defaults", nil, sampleSpec, estelaJob},
		{
			"every setting",
			map[string]any{
				"namespace":                  "spiders",
				"image_pull_secret":          "",
				"node_selector":              map[string]string{"role": "spider"},
				"service_account":            "estela-jobs",
				"ttl_seconds_after_finished": 3600,
				"backoff_limit":              2,
				"max_runtime":                "1h",
				"image_pull_policy":          "IfNotPresent",
				"run_as_user":                2000,
				"labels":                     map[string]string{"team": "data", "estela/spider": "overridden"},
			},
			sampleSpec,
			func() *batchv1.Job {
				job := estelaJob()
				job.Namespace = "spiders"
				job.Labels["team"] = "data"
				job.Spec.Template.Labels["team"] = "data"
				job.Spec.BackoffLimit = ptr.To[int32](2)
				job.Spec.TTLSecondsAfterFinished = ptr.To[int32](3600)
				job.Spec.ActiveDeadlineSeconds = ptr.To[int64](3600)
				pod := &job.Spec.Template.Spec
				pod.ImagePullSecrets = nil
				pod.NodeSelector = map[string]string{"role": "spider"}
				pod.ServiceAccountName = "estela-jobs"
				pod.SecurityContext.RunAsUser = ptr.To[int64](2000)
				pod.Containers[0].ImagePullPolicy = corev1.PullIfNotPresent
				return job
			},
		},
		{
			"spec max runtime and odd label value",
			map[string]any{"max_runtime": "1h"},
			func() engine.JobSpec {
				spec := sampleSpec()
				spec.MaxRuntime = 90*time.Minute + 500*time.Millisecond
				spec.Labels["estela/spider"] = "my spider/v2"
				spec.Resources = engine.Resources{MemoryLimitBytes: 1 << 30}
				return spec
			},
			func() *batchv1.Job {
				job := estelaJob()
				job.Labels["estela/spider"] = "my_spider_v2-3509d692"
				job.Spec.Template.Labels["estela/spider"] = "my_spider_v2-3509d692"
				job.Annotations[annotationLabels] = `{"app.kubernetes.io/managed-by":"estela-go","estela/job":"12","estela/project":"7","estela/spider":"my spider/v2"}`
				job.Spec.ActiveDeadlineSeconds = ptr.To[int64](5401)
				job.Spec.Template.Spec.Containers[0].Resources = corev1.ResourceRequirements{
					Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")},
				}
				return job
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, client := newTestEngine(t, tt.settings)
			resp, err := e.CreateJob(t.Context(), &engine.CreateJobRequest{Spec: tt.spec()})
			if err != nil {
				t.Fatalf("CreateJob: %v", err)
			}
			if !resp.Created || resp.Job.State != engine.JobPending {
				t.Errorf("CreateJob = %+v, want a created PENDING job", resp)
			}
			actions := client.Actions()
			if len(actions) != 1 {
				t.Fatalf("actions = %v, want one create", actionsOf(client))
			}
			got := actions[0].(k8stesting.CreateAction).GetObject().(*batchv1.Job)
			if diff := cmp.Diff(tt.want(), got, quantityEqual); diff != "" {
				t.Errorf("Job mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCreateJobRejectsInvalidSpec(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		modify func(*engine.JobSpec)
	}{
		{"name with upper case", func(s *engine.JobSpec) { s.Name = "SJ-1" }},
		{"name too long", func(s *engine.JobSpec) { s.Name = "sj-" + strings.Repeat("1", 61) }},
		{"no artifact", func(s *engine.JobSpec) { s.ArtifactRef = "" }},
		{"no command", func(s *engine.JobSpec) { s.Command = nil }},
		{"negative max runtime", func(s *engine.JobSpec) { s.MaxRuntime = -time.Second }},
		{"invalid label key", func(s *engine.JobSpec) { s.Labels["bad key"] = "x" }},
		{"reserved label key", func(s *engine.JobSpec) { s.Labels["job-name"] = "x" }},
		{"other managed-by", func(s *engine.JobSpec) { s.Labels[labelManagedBy] = "helm" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, client := newTestEngine(t, nil)
			spec := sampleSpec()
			tt.modify(&spec)
			_, err := e.CreateJob(t.Context(), &engine.CreateJobRequest{Spec: spec})
			if !errors.Is(err, errdefs.ErrInvalid) {
				t.Errorf("CreateJob: error = %v, want ErrInvalid", err)
			}
			if n := len(client.Actions()); n != 0 {
				t.Errorf("CreateJob made %d API calls, want 0", n)
			}
		})
	}
}

func TestLabelValue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		value string
		want  string
	}{
		{"valid stays", "books_v2.1", "books_v2.1"},
		{"empty stays", "", ""},
		{"spaces", "my spider/v2", "my_spider_v2-3509d692"},
		{"only invalid characters", "!!!", "e84c538e"},
		{"too long", "a" + strings.Repeat("b", 80), "a" + strings.Repeat("b", 53) + "-4de28647"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := labelValue(tt.value)
			if got != tt.want {
				t.Errorf("labelValue(%q) = %q, want %q", tt.value, got, tt.want)
			}
			if len(got) > 63 {
				t.Errorf("labelValue(%q) has %d characters, want at most 63", tt.value, len(got))
			}
		})
	}
}
