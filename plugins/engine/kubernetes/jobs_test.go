package main

import (
	"errors"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8stesting "k8s.io/client-go/testing"

	"github.com/estela-go/estela-go/sdk/engine"
	"github.com/estela-go/estela-go/sdk/errdefs"
)

// labeledJob returns a job of the plugin with the given estela labels, on
// the Job and, when the job has a pod, on the pod.
func labeledJob(name string, jobLabels map[string]string, pods ...corev1.Pod) []runtime.Object {
	job := jobFixture(name)
	job.Labels = kubeLabels(jobLabels, nil)
	job.Annotations[annotationLabels] = encodeLabels(jobLabels)
	objects := []runtime.Object{job}
	for i := range pods {
		pods[i].Labels = kubeLabels(jobLabels, nil)
		pods[i].Labels[labelJobName] = name
		objects = append(objects, &pods[i])
	}
	return objects
}

func TestListJobs(t *testing.T) {
	t.Parallel()
	var objects []runtime.Object
	objects = append(objects, labeledJob("sj-1-7", map[string]string{"estela/project": "7", "estela/spider": "a"},
		podFixture("sj-1-7", "sj-1-7-x", corev1.PodRunning, running(1)))...)
	objects = append(objects, labeledJob("sj-2-7", map[string]string{"estela/project": "7", "estela/spider": "b"})...)
	objects = append(objects, labeledJob("sj-3-8", map[string]string{"estela/project": "8", "estela/spider": "a"})...)
	foreign := jobFixture("other-tool")
	foreign.Labels = map[string]string{"estela/project": "7"}
	objects = append(objects, foreign)
	e, client := newTestEngine(t, nil, objects...)

	tests := []struct {
		name     string
		selector map[string]string
		want     map[string]engine.JobState
	}{
		{"every job of the plugin", nil, map[string]engine.JobState{"sj-1-7": engine.JobRunning, "sj-2-7": engine.JobPending, "sj-3-8": engine.JobPending}},
		{"one project", map[string]string{"estela/project": "7"}, map[string]engine.JobState{"sj-1-7": engine.JobRunning, "sj-2-7": engine.JobPending}},
		{"project and spider", map[string]string{"estela/project": "7", "estela/spider": "b"}, map[string]engine.JobState{"sj-2-7": engine.JobPending}},
		{"no match", map[string]string{"estela/project": "9"}, map[string]engine.JobState{}},
	}
	for _, tt := range tests {
		client.ClearActions()
		resp, err := e.ListJobs(t.Context(), &engine.ListJobsRequest{Labels: tt.selector})
		if err != nil {
			t.Fatalf("%s: ListJobs: %v", tt.name, err)
		}
		got := map[string]engine.JobState{}
		for _, job := range resp.Jobs {
			got[job.Name] = job.State
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s: jobs mismatch (-want +got):\n%s", tt.name, diff)
		}
		if diff := cmp.Diff([]string{"list jobs", "list pods"}, actionsOf(client)); diff != "" {
			t.Errorf("%s: API calls mismatch (-want +got):\n%s", tt.name, diff)
		}
	}
}

func TestListJobsExactLabels(t *testing.T) {
	t.Parallel()
	// Both values become the same label value without their hash suffix;
	// the hash keeps them apart, and the annotation decides in any case.
	e, _ := newTestEngine(t, nil, slices.Concat(
		labeledJob("sj-1-7", map[string]string{"estela/spider": "my spider"}),
		labeledJob("sj-2-7", map[string]string{"estela/spider": "my/spider"}),
	)...)
	resp, err := e.ListJobs(t.Context(), &engine.ListJobsRequest{Labels: map[string]string{"estela/spider": "my spider"}})
	if err != nil {
		t.Fatalf("ListJobs: %v", err)
	}
	if len(resp.Jobs) != 1 || resp.Jobs[0].Name != "sj-1-7" {
		t.Errorf("ListJobs = %+v, want only sj-1-7", resp.Jobs)
	}
	if diff := cmp.Diff(map[string]string{"estela/spider": "my spider"}, resp.Jobs[0].Labels); diff != "" {
		t.Errorf("labels mismatch (-want +got):\n%s", diff)
	}
}

func TestCreateJobIdempotent(t *testing.T) {
	t.Parallel()
	e, client := newTestEngine(t, nil)
	first, err := e.CreateJob(t.Context(), &engine.CreateJobRequest{Spec: sampleSpec()})
	if err != nil || !first.Created {
		t.Fatalf("first CreateJob = %+v, %v", first, err)
	}
	spec := sampleSpec()
	spec.Command = []string{"something", "else"}
	again, err := e.CreateJob(t.Context(), &engine.CreateJobRequest{Spec: spec})
	if err != nil {
		t.Fatalf("second CreateJob: %v", err)
	}
	if again.Created {
		t.Error("second CreateJob reports Created = true")
	}
	if again.Job.Name != "sj-12-7" || again.Job.State != engine.JobPending {
		t.Errorf("second CreateJob returned %+v, want the pending job", again.Job)
	}
	job, err := client.BatchV1().Jobs("default").Get(t.Context(), "sj-12-7", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"estela-crawl"}, job.Spec.Template.Spec.Containers[0].Command); diff != "" {
		t.Errorf("the second CreateJob changed the Job (-want +got):\n%s", diff)
	}
}

func TestCreateJobOverForeignJob(t *testing.T) {
	t.Parallel()
	foreign := jobFixture("sj-12-7")
	foreign.Labels = nil
	e, _ := newTestEngine(t, nil, foreign)
	_, err := e.CreateJob(t.Context(), &engine.CreateJobRequest{Spec: sampleSpec()})
	if !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("CreateJob: error = %v, want ErrConflict", err)
	}
}

func TestStopJob(t *testing.T) {
	t.Parallel()
	e, client := newTestEngine(t, nil, labeledJob("sj-1-7", map[string]string{"estela/job": "1"},
		podFixture("sj-1-7", "sj-1-7-x", corev1.PodRunning, running(1)))...)
	var deletes []k8stesting.DeleteAction
	client.PrependReactor("delete", "*", func(action k8stesting.Action) (bool, runtime.Object, error) {
		deletes = append(deletes, action.(k8stesting.DeleteAction))
		return false, nil, nil
	})
	resp, err := e.StopJob(t.Context(), &engine.StopJobRequest{Name: "sj-1-7", Grace: 5 * time.Second})
	if err != nil {
		t.Fatalf("StopJob: %v", err)
	}
	want := engine.JobStatus{
		Name: "sj-1-7", State: engine.JobStopped, Reason: reasonStopped,
		Labels: map[string]string{"estela/job": "1"}, StartedAt: at(1).Time, FinishedAt: testNow,
	}
	if diff := cmp.Diff(want, resp.Job); diff != "" {
		t.Errorf("StopJob status mismatch (-want +got):\n%s", diff)
	}
	wantCalls := []string{"get jobs", "list pods", "patch jobs", "delete jobs", "delete pods"}
	if diff := cmp.Diff(wantCalls, actionsOf(client)); diff != "" {
		t.Errorf("API calls mismatch (-want +got):\n%s", diff)
	}
	if len(deletes) != 2 {
		t.Fatalf("got %d deletes, want 2", len(deletes))
	}
	jobDelete := deletes[0].GetDeleteOptions()
	if jobDelete.PropagationPolicy == nil || *jobDelete.PropagationPolicy != metav1.DeletePropagationForeground {
		t.Errorf("Job delete propagation = %v, want Foreground", jobDelete.PropagationPolicy)
	}
	if jobDelete.Preconditions == nil || *jobDelete.Preconditions.UID != "uid-sj-1-7" {
		t.Errorf("Job delete preconditions = %+v, want the Job's UID", jobDelete.Preconditions)
	}
	if grace := deletes[1].GetDeleteOptions().GracePeriodSeconds; grace == nil || *grace != 5 {
		t.Errorf("pod delete grace = %v, want 5", grace)
	}

	again, err := e.StopJob(t.Context(), &engine.StopJobRequest{Name: "sj-1-7"})
	if err != nil || again.Job.State != engine.JobStopped {
		t.Errorf("StopJob of a stopped job = %+v, %v; want STOPPED", again, err)
	}
	got, err := e.GetJob(t.Context(), &engine.GetJobRequest{Name: "sj-1-7"})
	if err != nil || got.Job.State != engine.JobStopped {
		t.Errorf("GetJob after stop = %+v, %v; want STOPPED", got, err)
	}
	listed, err := e.ListJobs(t.Context(), &engine.ListJobsRequest{Labels: map[string]string{"estela/job": "1"}})
	if err != nil || len(listed.Jobs) != 1 || listed.Jobs[0].State != engine.JobStopped {
		t.Errorf("ListJobs after stop = %+v, %v; want the STOPPED job", listed, err)
	}
}

func TestStopJobWhileDeleting(t *testing.T) {
	t.Parallel()
	// A real API server keeps a Job under foreground deletion until its pods
	// are gone, and the annotation gives the state in the meantime.
	objects := labeledJob("sj-1-7", map[string]string{"estela/job": "1"}, podFixture("sj-1-7", "sj-1-7-x", corev1.PodRunning, running(1)))
	e, client := newTestEngine(t, nil, objects...)
	client.PrependReactor("delete", "jobs", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, nil // keep the Job, as the garbage collector would for a while
	})
	if _, err := e.StopJob(t.Context(), &engine.StopJobRequest{Name: "sj-1-7"}); err != nil {
		t.Fatalf("StopJob: %v", err)
	}
	e.stopped.remove("sj-1-7") // as in another plugin process
	got, err := e.GetJob(t.Context(), &engine.GetJobRequest{Name: "sj-1-7"})
	if err != nil {
		t.Fatalf("GetJob: %v", err)
	}
	if got.Job.State != engine.JobStopped || !got.Job.FinishedAt.Equal(testNow) {
		t.Errorf("GetJob = %+v, want STOPPED at %s from the annotation", got.Job, testNow)
	}
}

func TestStopFinishedJob(t *testing.T) {
	t.Parallel()
	job := jobFixture("sj-1-7", condition(batchv1.JobComplete, "CompletionsReached", 5))
	e, client := newTestEngine(t, nil, job)
	resp, err := e.StopJob(t.Context(), &engine.StopJobRequest{Name: "sj-1-7"})
	if err != nil || resp.Job.State != engine.JobSucceeded {
		t.Errorf("StopJob of a finished job = %+v, %v; want SUCCEEDED", resp, err)
	}
	if diff := cmp.Diff([]string{"get jobs", "list pods"}, actionsOf(client)); diff != "" {
		t.Errorf("StopJob of a finished job changed something (-want +got):\n%s", diff)
	}
}

func TestDeleteJob(t *testing.T) {
	t.Parallel()
	e, client := newTestEngine(t, nil, labeledJob("sj-1-7", nil)...)
	var options metav1.DeleteOptions
	client.PrependReactor("delete", "jobs", func(action k8stesting.Action) (bool, runtime.Object, error) {
		options = action.(k8stesting.DeleteAction).GetDeleteOptions()
		return false, nil, nil
	})
	if _, err := e.DeleteJob(t.Context(), &engine.DeleteJobRequest{Name: "sj-1-7"}); err != nil {
		t.Fatalf("DeleteJob: %v", err)
	}
	if options.PropagationPolicy == nil || *options.PropagationPolicy != metav1.DeletePropagationBackground {
		t.Errorf("propagation = %v, want Background", options.PropagationPolicy)
	}
	if _, err := e.GetJob(t.Context(), &engine.GetJobRequest{Name: "sj-1-7"}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("GetJob after delete: error = %v, want ErrNotFound", err)
	}
	if _, err := e.DeleteJob(t.Context(), &engine.DeleteJobRequest{Name: "sj-1-7"}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("second DeleteJob: error = %v, want ErrNotFound", err)
	}
}

func TestDeleteStoppedJob(t *testing.T) {
	t.Parallel()
	e, _ := newTestEngine(t, nil, labeledJob("sj-1-7", nil)...)
	if _, err := e.StopJob(t.Context(), &engine.StopJobRequest{Name: "sj-1-7"}); err != nil {
		t.Fatalf("StopJob: %v", err)
	}
	if _, err := e.DeleteJob(t.Context(), &engine.DeleteJobRequest{Name: "sj-1-7"}); err != nil {
		t.Fatalf("DeleteJob of a stopped job: %v", err)
	}
	if _, err := e.GetJob(t.Context(), &engine.GetJobRequest{Name: "sj-1-7"}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("GetJob after delete: error = %v, want ErrNotFound", err)
	}
}

func TestUnknownJob(t *testing.T) {
	t.Parallel()
	foreign := jobFixture("other-tool")
	foreign.Labels = nil
	e, client := newTestEngine(t, nil, foreign)
	for _, name := range []string{"sj-404-1", "other-tool", "Not_A_Name"} {
		if _, err := e.GetJob(t.Context(), &engine.GetJobRequest{Name: name}); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("GetJob %s: error = %v, want ErrNotFound", name, err)
		}
		if _, err := e.StopJob(t.Context(), &engine.StopJobRequest{Name: name}); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("StopJob %s: error = %v, want ErrNotFound", name, err)
		}
		if _, err := e.DeleteJob(t.Context(), &engine.DeleteJobRequest{Name: name}); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("DeleteJob %s: error = %v, want ErrNotFound", name, err)
		}
		if err := e.JobLogs(t.Context(), &engine.JobLogsRequest{Name: name}, new(discard)); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("JobLogs %s: error = %v, want ErrNotFound", name, err)
		}
	}
	if _, err := client.BatchV1().Jobs("default").Get(t.Context(), "other-tool", metav1.GetOptions{}); err != nil {
		t.Errorf("the foreign Job was deleted: %v", err)
	}
}

func TestAPIErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"server down", &url.Error{Op: "Get", URL: "https://10.0.0.1/apis/batch/v1", Err: errors.New("connect: connection refused")}, errdefs.ErrUnavailable},
		{"unavailable", apiStatusError(503), errdefs.ErrUnavailable},
		{"forbidden", apiStatusError(403), errdefs.ErrUnavailable},
		{"conflict", apiStatusError(409), errdefs.ErrConflict},
		{"invalid", apiStatusError(422), errdefs.ErrInvalid},
		{"not found", apiStatusError(404), errdefs.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, client := newTestEngine(t, nil)
			client.PrependReactor("get", "jobs", func(k8stesting.Action) (bool, runtime.Object, error) {
				return true, nil, tt.err
			})
			_, err := e.GetJob(t.Context(), &engine.GetJobRequest{Name: "sj-1-7"})
			if err == nil {
				t.Fatal("GetJob succeeded, want an error")
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("GetJob: error = %v, want %v", err, tt.want)
			}
		})
	}
}

func apiStatusError(code int) error {
	return apierrors.NewGenericServerResponse(code, "get", schema.GroupResource{Group: "batch", Resource: "jobs"}, "sj-1-7", "", 0, false)
}

type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }

func TestStopJobAfterFailedDelete(t *testing.T) {
	t.Parallel()
	e, client := newTestEngine(t, nil, labeledJob("sj-1-7", nil, podFixture("sj-1-7", "sj-1-7-x", corev1.PodRunning, running(1)))...)
	client.PrependReactor("delete", "jobs", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apiStatusError(503)
	})
	if _, err := e.StopJob(t.Context(), &engine.StopJobRequest{Name: "sj-1-7"}); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("StopJob: error = %v, want ErrUnavailable", err)
	}
	client.ReactionChain = client.ReactionChain[1:] // the API server is back
	e.now = func() time.Time { return testNow.Add(time.Minute) }
	resp, err := e.StopJob(t.Context(), &engine.StopJobRequest{Name: "sj-1-7"})
	if err != nil {
		t.Fatalf("second StopJob: %v", err)
	}
	if !resp.Job.FinishedAt.Equal(testNow) {
		t.Errorf("FinishedAt = %s, want the time of the first stop %s", resp.Job.FinishedAt, testNow)
	}
	if _, err := client.BatchV1().Jobs("default").Get(t.Context(), "sj-1-7", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the Job still exists after the second StopJob: %v", err)
	}
}
