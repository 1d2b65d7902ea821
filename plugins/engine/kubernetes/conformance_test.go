package main

import (
	"archive/zip"
	"bytes"
	"context"
	"io"
	"maps"
	"path"
	"strconv"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"

	"github.com/estela-go/estela-go/sdk/engine"
	"github.com/estela-go/estela-go/sdk/enginetest"
	"github.com/estela-go/estela-go/sdk/errdefs"
)

// TestConformance runs the SDK's suite against the engine on a fake
// clientset, with runJobController in place of the cluster.
func TestConformance(t *testing.T) {
	t.Parallel()
	enginetest.Run(t, enginetest.Harness{
		New: func(t *testing.T) engine.Engine {
			e, client := newTestEngine(t, nil)
			runJobController(t, client, "default")
			return enginetest.Connect(t, &builtArtifacts{kubeEngine: e})
		},
		Archive: func(t *testing.T) ([]byte, []string) {
			return projectZip(t, "alpha", "beta"), []string{"alpha", "beta"}
		},
		Exit:    func(code int) []string { return []string{"exit", strconv.Itoa(code)} },
		Sleep:   []string{"sleep", "60"},
		Echo:    func(text string) []string { return []string{"echo", text} },
		Timeout: 10 * time.Second,
	})
}

// builtArtifacts replaces the image build of a deploy, because the suite
// prepares its artifact with PrepareArtifact and this engine builds images
// through BuildImage instead. It accepts any zip, returns an image
// reference and names the spiders from the archive's spiders/*.py files.
type builtArtifacts struct {
	*kubeEngine
}

func (b *builtArtifacts) PrepareArtifact(_ context.Context, req *engine.PrepareArtifactRequest) (*engine.PrepareArtifactResponse, error) {
	raw, err := io.ReadAll(req.Archive)
	if err != nil {
		return nil, err
	}
	archive, err := zip.NewReader(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		return nil, errdefs.Invalid("not a zip archive: %v", err)
	}
	resp := &engine.PrepareArtifactResponse{
		ArtifactRef: "registry.example.com/" + req.ProjectID + ":" + strconv.FormatInt(req.DeployID, 10),
		ProjectType: "scrapy",
	}
	for _, f := range archive.File {
		if dir, file := path.Split(f.Name); dir == "spiders/" && file != "__init__.py" {
			resp.Spiders = append(resp.Spiders, strings.TrimSuffix(file, ".py"))
		}
	}
	return resp, nil
}

func projectZip(t *testing.T, spiders ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	names := []string{".estela/Dockerfile-estela", "scrapy.cfg", "spiders/__init__.py"}
	for _, spider := range spiders {
		names = append(names, "spiders/"+spider+".py")
	}
	for _, name := range names {
		if _, err := w.Create(name); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// runJobController plays the Job controller and the kubelet on a fake
// clientset until the test ends. For each new Job it creates a pod. A pod
// whose command is "exit N" ends at once with code N. One whose command is
// "echo TEXT" ends with code 0 and has TEXT as its log. The Job of an
// ended pod gets its Complete or Failed condition, and any other command
// keeps running. Deleting a Job deletes its pods, as the garbage collector
// does.
func runJobController(t *testing.T, client *fake.Clientset, namespace string) {
	t.Helper()
	client.PrependReactor("get", "pods", func(action k8stesting.Action) (bool, runtime.Object, error) {
		if action.GetSubresource() != "log" {
			return false, nil, nil
		}
		return true, &runtime.Unknown{Raw: []byte(echoedText(client, action))}, nil
	})
	w, err := client.BatchV1().Jobs(namespace).Watch(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatalf("watch jobs: %v", err)
	}
	done := make(chan struct{})
	t.Cleanup(func() {
		w.Stop()
		<-done
	})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			job, ok := ev.Object.(*batchv1.Job)
			if !ok {
				continue
			}
			var err error
			switch ev.Type {
			case watch.Added:
				err = startPod(context.Background(), client, job)
			case watch.Deleted:
				err = deletePods(context.Background(), client, job)
			}
			if err != nil {
				t.Errorf("job controller: %s %s: %v", ev.Type, job.Name, err)
			}
		}
	}()
}

func startPod(ctx context.Context, client *fake.Clientset, job *batchv1.Job) error {
	now := metav1.Now()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:              job.Name + "-pod",
			Namespace:         job.Namespace,
			CreationTimestamp: now,
			Labels:            maps.Clone(job.Spec.Template.Labels),
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "batch/v1", Kind: "Job", Name: job.Name, UID: job.UID, Controller: ptr.To(true),
			}},
		},
		Spec: *job.Spec.Template.Spec.DeepCopy(),
	}
	pod.Labels[labelJobName] = job.Name

	main := pod.Spec.Containers[0]
	code, exits := exitCode(main.Command)
	state := corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}
	pod.Status.Phase = corev1.PodRunning
	if exits {
		reason, phase := "Completed", corev1.PodSucceeded
		if code != 0 {
			reason, phase = "Error", corev1.PodFailed
		}
		state = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code, Reason: reason, StartedAt: now, FinishedAt: now}}
		pod.Status.Phase = phase
	}
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: main.Name, Image: main.Image, State: state}}

	if _, err := client.CoreV1().Pods(job.Namespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		return err
	}
	if exits {
		return finishJob(ctx, client, job.Namespace, job.Name, code, now)
	}
	return nil
}

// exitCode returns the exit code of "exit N" and "echo TEXT", the
// commands that end at once.
func exitCode(command []string) (int32, bool) {
	if len(command) != 2 {
		return 0, false
	}
	switch command[0] {
	case "echo":
		return 0, true
	case "exit":
		code, err := strconv.ParseInt(command[1], 10, 32)
		return int32(code), err == nil
	default:
		return 0, false
	}
}

// echoedText returns the log of an "echo TEXT" pod of the namespace: TEXT
// and a newline. The fake clientset's log action does not carry the pod's
// name, so this works for tests with one such pod per clientset.
func echoedText(client *fake.Clientset, action k8stesting.Action) string {
	pods, err := client.Tracker().List(corev1.SchemeGroupVersion.WithResource("pods"), corev1.SchemeGroupVersion.WithKind("Pod"), action.GetNamespace())
	if err != nil {
		return ""
	}
	for _, pod := range pods.(*corev1.PodList).Items {
		command := pod.Spec.Containers[0].Command
		if len(command) == 2 && command[0] == "echo" {
			return command[1] + "\n"
		}
	}
	return ""
}

func finishJob(ctx context.Context, client *fake.Clientset, namespace, name string, code int32, at metav1.Time) error {
	job, err := client.BatchV1().Jobs(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	c := batchv1.JobCondition{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, Reason: "CompletionsReached", LastTransitionTime: at}
	if code != 0 {
		c.Type, c.Reason = batchv1.JobFailed, "BackoffLimitExceeded"
	} else {
		job.Status.CompletionTime = &at
	}
	job.Status.Conditions = append(job.Status.Conditions, c)
	_, err = client.BatchV1().Jobs(namespace).UpdateStatus(ctx, job, metav1.UpdateOptions{})
	return err
}

func deletePods(ctx context.Context, client *fake.Clientset, job *batchv1.Job) error {
	pods, err := client.CoreV1().Pods(job.Namespace).List(ctx, metav1.ListOptions{LabelSelector: labelJobName + "=" + job.Name})
	if err != nil {
		return err
	}
	for _, pod := range pods.Items {
		if err := client.CoreV1().Pods(job.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{}); err != nil {
			return err
		}
	}
	return nil
}
