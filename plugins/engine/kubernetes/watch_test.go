package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/estela-go/estela-go/sdk/engine"
)

// watchTimeout bounds each wait for an event; the fake clientset delivers
// them within milliseconds.
const watchTimeout = 10 * time.Second

// startWatch runs WatchJobs until the test ends and returns its events.
func startWatch(t *testing.T, e *kubeEngine, selector map[string]string) (<-chan engine.JobEvent, <-chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	events := make(chan engine.JobEvent, 100)
	done := make(chan error, 1)
	go func() {
		done <- e.WatchJobs(ctx, &engine.WatchJobsRequest{Labels: selector}, func(ev engine.JobEvent) error {
			events <- ev
			return nil
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return events, done
}

func nextEvent(t *testing.T, events <-chan engine.JobEvent) engine.JobEvent {
	t.Helper()
	select {
	case ev := <-events:
		return ev
	case <-time.After(watchTimeout):
		t.Fatal("no event within", watchTimeout)
		return engine.JobEvent{}
	}
}

func TestWatchJobs(t *testing.T) {
	t.Parallel()
	project7 := map[string]string{"estela/project": "7"}
	objects := labeledJob("sj-1-7", project7)
	objects = append(objects, labeledJob("sj-2-8", map[string]string{"estela/project": "8"})...)
	e, client := newTestEngine(t, nil, objects...)
	events, _ := startWatch(t, e, project7)
	ctx := t.Context()

	if ev := nextEvent(t, events); ev.Job.Name != "sj-1-7" || ev.Job.State != engine.JobPending || ev.Deleted {
		t.Fatalf("first event = %+v, want sj-1-7 PENDING", ev)
	}

	pod := labeledJob("sj-1-7", project7, podFixture("sj-1-7", "sj-1-7-x", corev1.PodRunning, running(1)))[1].(*corev1.Pod)
	if _, err := client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, events); ev.Job.Name != "sj-1-7" || ev.Job.State != engine.JobRunning {
		t.Fatalf("event after the pod started = %+v, want sj-1-7 RUNNING", ev)
	}

	job, err := client.BatchV1().Jobs("default").Get(ctx, "sj-1-7", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	job.Status.Conditions = []batchv1.JobCondition{condition(batchv1.JobComplete, "CompletionsReached", 5)}
	if _, err := client.BatchV1().Jobs("default").UpdateStatus(ctx, job, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, events); ev.Job.State != engine.JobSucceeded {
		t.Fatalf("event after completion = %+v, want SUCCEEDED", ev)
	}

	created, err := e.CreateJob(ctx, &engine.CreateJobRequest{Spec: engine.JobSpec{
		Name: "sj-3-7", ArtifactRef: "registry.example.com/p:1", Command: []string{"estela-crawl"}, Labels: project7,
	}})
	if err != nil || !created.Created {
		t.Fatalf("CreateJob = %+v, %v", created, err)
	}
	if ev := nextEvent(t, events); ev.Job.Name != "sj-3-7" || ev.Job.State != engine.JobPending {
		t.Fatalf("event after CreateJob = %+v, want sj-3-7 PENDING", ev)
	}

	if _, err := e.DeleteJob(ctx, &engine.DeleteJobRequest{Name: "sj-1-7"}); err != nil {
		t.Fatal(err)
	}
	ev := nextEvent(t, events)
	if ev.Job.Name != "sj-1-7" || !ev.Deleted || ev.Job.State != engine.JobSucceeded {
		t.Fatalf("event after DeleteJob = %+v, want sj-1-7 deleted, SUCCEEDED", ev)
	}

	if _, err := e.StopJob(ctx, &engine.StopJobRequest{Name: "sj-3-7"}); err != nil {
		t.Fatal(err)
	}
	// The stop annotation and the deletion of the Job give the same status,
	// sent once: the job exists for the host until DeleteJob.
	if ev := nextEvent(t, events); ev.Job.Name != "sj-3-7" || ev.Job.State != engine.JobStopped || ev.Deleted {
		t.Fatalf("event after StopJob = %+v, want sj-3-7 STOPPED", ev)
	}
	if _, err := e.DeleteJob(ctx, &engine.DeleteJobRequest{Name: "sj-3-7"}); err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, events); ev.Job.Name != "sj-3-7" || ev.Job.State != engine.JobStopped || !ev.Deleted {
		t.Fatalf("event after DeleteJob of the stopped job = %+v, want sj-3-7 deleted, STOPPED", ev)
	}

	select {
	case ev := <-events:
		t.Errorf("unexpected event %+v", ev)
	case <-time.After(100 * time.Millisecond):
	}
}

func TestWatchJobsEndsWithSendError(t *testing.T) {
	t.Parallel()
	e, _ := newTestEngine(t, nil, labeledJob("sj-1-7", nil)...)
	closed := errors.New("stream closed")
	err := e.WatchJobs(t.Context(), &engine.WatchJobsRequest{}, func(engine.JobEvent) error { return closed })
	if !errors.Is(err, closed) {
		t.Errorf("WatchJobs: error = %v, want the error of send", err)
	}
}

// syncBuffer is a bytes.Buffer safe for the informers' goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestWatchJobsLogsListErrors(t *testing.T) {
	t.Parallel()
	e, client := newTestEngine(t, nil)
	var logs syncBuffer
	e.logger = hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Warn})
	client.PrependReactor("list", "jobs", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apiStatusError(403)
	})
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	err := e.WatchJobs(ctx, &engine.WatchJobsRequest{}, func(ev engine.JobEvent) error {
		t.Errorf("unexpected event %+v", ev)
		return nil
	})
	if err != nil {
		t.Errorf("WatchJobs after its context ended: %v", err)
	}
	if !strings.Contains(logs.String(), "list or watch failed") {
		t.Errorf("log = %q, want the list failure", logs.String())
	}
}
