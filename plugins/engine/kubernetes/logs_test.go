package main

import (
	"bytes"
	"errors"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"

	"github.com/estela-go/estela-go/sdk/engine"
	"github.com/estela-go/estela-go/sdk/errdefs"
)

// logRecorder responds to pod log requests with "logs of <container>" and
// records their options. Without it the fake clientset returns "fake logs".
type logRecorder struct {
	mu      sync.Mutex
	options []corev1.PodLogOptions
}

func (r *logRecorder) react(action k8stesting.Action) (bool, runtime.Object, error) {
	options := action.(k8stesting.GenericAction).GetValue().(*corev1.PodLogOptions)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.options = append(r.options, *options)
	return true, &runtime.Unknown{Raw: []byte("logs of " + options.Container + "\n")}, nil
}

func TestJobLogsFakeClientset(t *testing.T) {
	t.Parallel()
	e, _ := newTestEngine(t, nil, labeledJob("sj-1-7", nil, podFixture("sj-1-7", "sj-1-7-x", corev1.PodRunning, running(1)))...)
	var out bytes.Buffer
	if err := e.JobLogs(t.Context(), &engine.JobLogsRequest{Name: "sj-1-7"}, &out); err != nil {
		t.Fatalf("JobLogs: %v", err)
	}
	if got := out.String(); got != "fake logs" {
		t.Errorf("JobLogs wrote %q, want the fake clientset's %q", got, "fake logs")
	}
}

func TestJobLogs(t *testing.T) {
	t.Parallel()
	buildPod := podFixture("deploy-p-1", "deploy-p-1-x", corev1.PodRunning, running(3))
	buildPod.Spec.InitContainers = []corev1.Container{{Name: downloaderContainer}, {Name: kanikoContainer}}
	buildPod.Spec.Containers[0].Name = reporterContainer
	buildPod.Status.ContainerStatuses[0].Name = reporterContainer
	buildPod.Status.InitContainerStatuses = []corev1.ContainerStatus{
		{Name: downloaderContainer, State: terminated("Completed", 0)},
		{Name: kanikoContainer, State: terminated("Completed", 0)},
	}

	initializing := podFixture("deploy-p-2", "deploy-p-2-x", corev1.PodPending, waiting("PodInitializing", ""))
	initializing.Spec.InitContainers = []corev1.Container{{Name: downloaderContainer}, {Name: kanikoContainer}}
	initializing.Spec.Containers[0].Name = reporterContainer
	initializing.Status.ContainerStatuses[0].Name = reporterContainer
	initializing.Status.InitContainerStatuses = []corev1.ContainerStatus{
		{Name: downloaderContainer, State: terminated("Completed", 0)},
		{Name: kanikoContainer, State: running(2)},
	}

	tests := []struct {
		name    string
		pod     *corev1.Pod
		request engine.JobLogsRequest
		want    string
		options []corev1.PodLogOptions
	}{
		{
			"spider job", ptr.To(podFixture("sj-1-7", "sj-1-7-x", corev1.PodRunning, running(1))),
			engine.JobLogsRequest{Name: "sj-1-7", TailLines: 100, Follow: true},
			"logs of jobcontainer\n",
			[]corev1.PodLogOptions{{Container: jobContainer, TailLines: ptr.To[int64](100), Follow: true}},
		},
		{
			"spider job not started", ptr.To(podFixture("sj-1-7", "sj-1-7-x", corev1.PodPending, waiting("ContainerCreating", ""))),
			engine.JobLogsRequest{Name: "sj-1-7"},
			"", nil,
		},
		{
			"no pod", nil, engine.JobLogsRequest{Name: "sj-1-7"}, "", nil,
		},
		{
			"build", &buildPod, engine.JobLogsRequest{Name: "deploy-p-1", TailLines: 10},
			"=== project-downloader ===\nlogs of project-downloader\n=== kaniko-builder ===\nlogs of kaniko-builder\n=== spider-status ===\nlogs of spider-status\n",
			[]corev1.PodLogOptions{
				{Container: downloaderContainer, TailLines: ptr.To[int64](10)},
				{Container: kanikoContainer, TailLines: ptr.To[int64](10)},
				{Container: reporterContainer, TailLines: ptr.To[int64](10)},
			},
		},
		{
			"build still running", &initializing, engine.JobLogsRequest{Name: "deploy-p-2"},
			"=== project-downloader ===\nlogs of project-downloader\n=== kaniko-builder ===\nlogs of kaniko-builder\n",
			[]corev1.PodLogOptions{{Container: downloaderContainer}, {Container: kanikoContainer}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var objects []runtime.Object
			if tt.pod == nil {
				objects = labeledJob(tt.request.Name, nil)
			} else {
				objects = labeledJob(tt.request.Name, nil, *tt.pod)
			}
			e, client := newTestEngine(t, nil, objects...)
			recorder := &logRecorder{}
			client.PrependReactor("get", "pods", func(action k8stesting.Action) (bool, runtime.Object, error) {
				if action.GetSubresource() != "log" {
					return false, nil, nil
				}
				return recorder.react(action)
			})
			var out bytes.Buffer
			if err := e.JobLogs(t.Context(), &tt.request, &out); err != nil {
				t.Fatalf("JobLogs: %v", err)
			}
			if diff := cmp.Diff(tt.want, out.String()); diff != "" {
				t.Errorf("output mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.options, recorder.options); diff != "" {
				t.Errorf("log options mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestJobLogsFollowWithoutPod(t *testing.T) {
	t.Parallel()
	e, _ := newTestEngine(t, nil, labeledJob("sj-1-7", nil)...)
	err := e.JobLogs(t.Context(), &engine.JobLogsRequest{Name: "sj-1-7", Follow: true}, new(bytes.Buffer))
	if !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("JobLogs: error = %v, want ErrUnavailable", err)
	}
}
