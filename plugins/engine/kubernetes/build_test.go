package main

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"

	"github.com/estela-go/estela-go/sdk/engine"
	"github.com/estela-go/estela-go/sdk/errdefs"
)

func sampleBuild() *engine.BuildImageRequest {
	return &engine.BuildImageRequest{
		ProjectID:    "p7",
		DeployID:     3,
		Image:        "registry.example.com/estela/p7:deploy-3",
		ArchiveURL:   "http://estela-api/api/projects/p7/deploys/3/archive",
		ArchiveToken: "archive-token-value",
		Registry:     engine.RegistryAuth{Server: "registry.example.com", Username: "robot", Secret: "registry-password"},
		APIHost:      "http://estela-api",
		ReportToken:  "report-token-value",
	}
}

func buildLabels() map[string]string {
	return map[string]string{labelManagedBy: managedBy, "estela/project": "p7", "estela/deploy": "3"}
}

func secretRef(name, key string) *corev1.EnvVarSource {
	return &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: name}, Key: key}}
}

func restrictedNonRoot() *corev1.SecurityContext {
	return &corev1.SecurityContext{
		RunAsNonRoot:             ptr.To(true),
		RunAsUser:                ptr.To[int64](1000),
		AllowPrivilegeEscalation: ptr.To(false),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
	}
}

// expectedBuildJob is the build Job of sampleBuild with default settings.
func expectedBuildJob() *batchv1.Job {
	helper := corev1.ResourceRequirements{Requests: resourceListOf("250m", "256Mi"), Limits: resourceListOf("500m", "512Mi")}
	workspace := corev1.VolumeMount{Name: "workspace", MountPath: "/workspace"}
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name:        "deploy-p7-3",
			Namespace:   "default",
			Labels:      buildLabels(),
			Annotations: map[string]string{annotationLabels: `{"app.kubernetes.io/managed-by":"estela-go","estela/deploy":"3","estela/project":"p7"}`},
		},
		Spec: batchv1.JobSpec{
			BackoffLimit:            ptr.To[int32](0),
			TTLSecondsAfterFinished: ptr.To[int32](86400),
			ActiveDeadlineSeconds:   ptr.To[int64](1800),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: buildLabels()},
				Spec: corev1.PodSpec{
					RestartPolicy:    corev1.RestartPolicyNever,
					ImagePullSecrets: []corev1.LocalObjectReference{{Name: "regcred"}, {Name: "deploy-p7-3-registry"}},
					Volumes: []corev1.Volume{
						{Name: "workspace", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
						{Name: "registry-auth", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
							SecretName: "deploy-p7-3-registry",
							Items:      []corev1.KeyToPath{{Key: ".dockerconfigjson", Path: "config.json"}},
						}}},
					},
					InitContainers: []corev1.Container{
						{
							Name:            "project-downloader",
							Image:           "curlimages/curl:8.10.1",
							ImagePullPolicy: corev1.PullIfNotPresent,
							Command:         []string{"sh", "-c", downloadScript},
							Env: []corev1.EnvVar{
								{Name: "ARCHIVE_TOKEN", ValueFrom: secretRef("deploy-p7-3", "archive-token")},
								{Name: "ARCHIVE_URL", Value: "http://estela-api/api/projects/p7/deploys/3/archive"},
							},
							VolumeMounts:    []corev1.VolumeMount{workspace},
							Resources:       helper,
							SecurityContext: restrictedNonRoot(),
						},
						{
							Name:            "kaniko-builder",
							Image:           "gcr.io/kaniko-project/executor:v1.23.2",
							ImagePullPolicy: corev1.PullIfNotPresent,
							Args: []string{
								"--context=dir:///workspace/project",
								"--dockerfile=/workspace/project/.estela/Dockerfile-estela",
								"--destination=registry.example.com/estela/p7:deploy-3",
								"--snapshot-mode=redo",
								"--single-snapshot",
								"--skip-unused-stages",
							},
							VolumeMounts: []corev1.VolumeMount{workspace, {Name: "registry-auth", MountPath: "/kaniko/.docker", ReadOnly: true}},
							Resources:    corev1.ResourceRequirements{Requests: resourceListOf("1", "1Gi"), Limits: resourceListOf("2", "2Gi")},
						},
					},
					Containers: []corev1.Container{{
						Name:            "spider-status",
						Image:           "registry.example.com/estela/p7:deploy-3",
						ImagePullPolicy: corev1.PullAlways,
						Command:         []string{"estela-report-deploy"},
						Env: []corev1.EnvVar{
							{Name: "JOB_INFO", Value: `{"api_host":"http://estela-api","key":"p7","spider":""}`},
							{Name: "KEY", Value: "p7.3"},
							{Name: "TOKEN", ValueFrom: secretRef("deploy-p7-3", "report-token")},
						},
						Resources:       helper,
						SecurityContext: restrictedNonRoot(),
					}},
				},
			},
		},
	}
}

func expectedBuildSecrets() []*corev1.Secret {
	return []*corev1.Secret{
		{
			ObjectMeta: metav1.ObjectMeta{Name: "deploy-p7-3", Namespace: "default", Labels: buildLabels()},
			Type:       corev1.SecretTypeOpaque,
			Data: map[string][]byte{
				"archive-token": []byte("archive-token-value"),
				"report-token":  []byte("report-token-value"),
			},
		},
		{
			ObjectMeta: metav1.ObjectMeta{Name: "deploy-p7-3-registry", Namespace: "default", Labels: buildLabels()},
			Type:       corev1.SecretTypeDockerConfigJson,
			Data: map[string][]byte{
				// "cm9ib3Q6cmVnaXN0cnktcGFzc3dvcmQ=" is base64 of "robot:registry-password".
				".dockerconfigjson": []byte(`{"auths":{"registry.example.com":{"username":"robot","password":"registry-password","auth":"cm9ib3Q6cmVnaXN0cnktcGFzc3dvcmQ="}}}`),
			},
		},
	}
}

// createdObjects returns the Jobs and Secrets the client's create actions carried.
func createdObjects(client *k8stesting.Fake) (jobs []*batchv1.Job, secrets []*corev1.Secret) {
	for _, action := range client.Actions() {
		create, ok := action.(k8stesting.CreateAction)
		if !ok {
			continue
		}
		switch obj := create.GetObject().(type) {
		case *batchv1.Job:
			jobs = append(jobs, obj)
		case *corev1.Secret:
			secrets = append(secrets, obj)
		}
	}
	return jobs, secrets
}

func TestBuildImage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		settings    map[string]any
		request     func() *engine.BuildImageRequest
		wantJob     func() *batchv1.Job
		wantSecrets func() []*corev1.Secret
	}{
		{"with registry login", nil, sampleBuild, expectedBuildJob, expectedBuildSecrets},
		{
			"without registry login",
			map[string]any{"build": map[string]any{
				"kaniko_args": []string{"--insecure"},
				"resources":   map[string]any{"limits": map[string]string{"memory": "4Gi"}},
			}},
			func() *engine.BuildImageRequest {
				req := sampleBuild()
				req.Registry = engine.RegistryAuth{}
				req.Timeout = 10 * time.Minute
				return req
			},
			func() *batchv1.Job {
				job := expectedBuildJob()
				job.Spec.ActiveDeadlineSeconds = ptr.To[int64](600)
				pod := &job.Spec.Template.Spec
				pod.ImagePullSecrets = pod.ImagePullSecrets[:1]
				pod.Volumes = pod.Volumes[:1]
				kaniko := &pod.InitContainers[1]
				kaniko.VolumeMounts = kaniko.VolumeMounts[:1]
				kaniko.Args = append(kaniko.Args, "--insecure")
				kaniko.Resources = corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("4Gi")}}
				return job
			},
			func() []*corev1.Secret { return expectedBuildSecrets()[:1] },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, client := newTestEngine(t, tt.settings)
			req := tt.request()
			resp, err := e.BuildImage(t.Context(), req)
			if err != nil {
				t.Fatalf("BuildImage: %v", err)
			}
			if diff := cmp.Diff(&engine.BuildImageResponse{BuildName: "deploy-p7-3", Image: req.Image}, resp); diff != "" {
				t.Errorf("response mismatch (-want +got):\n%s", diff)
			}
			jobs, secrets := createdObjects(&client.Fake)
			if len(jobs) != 1 {
				t.Fatalf("created %d Jobs, want 1", len(jobs))
			}
			if diff := cmp.Diff(tt.wantJob(), jobs[0], quantityEqual); diff != "" {
				t.Errorf("Job mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantSecrets(), secrets); diff != "" {
				t.Errorf("Secrets mismatch (-want +got):\n%s", diff)
			}
			manifest, err := json.Marshal(jobs[0])
			if err != nil {
				t.Fatal(err)
			}
			for _, secret := range []string{req.ArchiveToken, req.ReportToken, "registry-password"} {
				if strings.Contains(string(manifest), secret) {
					t.Errorf("the Job manifest contains the secret %q", secret)
				}
			}
			checkOwners(t, client.Fake.Actions(), len(secrets))
		})
	}
}

// checkOwners checks that the Job owns every build Secret once created.
func checkOwners(t *testing.T, actions []k8stesting.Action, secrets int) {
	t.Helper()
	want := `{"metadata":{"ownerReferences":[{"apiVersion":"batch/v1","kind":"Job","name":"deploy-p7-3","uid":"uid-deploy-p7-3"}]}}`
	patches := 0
	for _, action := range actions {
		patch, ok := action.(k8stesting.PatchAction)
		if !ok || action.GetResource().Resource != "secrets" {
			continue
		}
		patches++
		if diff := cmp.Diff(want, string(patch.GetPatch())); diff != "" {
			t.Errorf("owner patch of %s mismatch (-want +got):\n%s", patch.GetName(), diff)
		}
	}
	if patches != secrets {
		t.Errorf("got %d owner patches, want %d", patches, secrets)
	}
}

func TestBuildImageIdempotent(t *testing.T) {
	t.Parallel()
	e, client := newTestEngine(t, nil)
	if _, err := e.BuildImage(t.Context(), sampleBuild()); err != nil {
		t.Fatalf("BuildImage: %v", err)
	}
	client.ClearActions()
	resp, err := e.BuildImage(t.Context(), sampleBuild())
	if err != nil || resp.BuildName != "deploy-p7-3" {
		t.Fatalf("second BuildImage = %+v, %v", resp, err)
	}
	if diff := cmp.Diff([]string{"get jobs"}, actionsOf(client)); diff != "" {
		t.Errorf("second BuildImage API calls mismatch (-want +got):\n%s", diff)
	}
	status, err := e.GetJob(t.Context(), &engine.GetJobRequest{Name: "deploy-p7-3"})
	if err != nil || status.Job.State != engine.JobPending {
		t.Errorf("GetJob of the build = %+v, %v; want PENDING", status, err)
	}
}

func TestBuildImageReplacesLeftoverSecret(t *testing.T) {
	t.Parallel()
	leftover := expectedBuildSecrets()[0]
	leftover.Data["report-token"] = []byte("old")
	e, client := newTestEngine(t, nil, leftover)
	if _, err := e.BuildImage(t.Context(), sampleBuild()); err != nil {
		t.Fatalf("BuildImage: %v", err)
	}
	secret, err := client.CoreV1().Secrets("default").Get(t.Context(), "deploy-p7-3", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(secret.Data["report-token"]); got != "report-token-value" {
		t.Errorf("report token = %q, want the new one", got)
	}
}

func TestBuildImageInvalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		modify func(*engine.BuildImageRequest)
	}{
		{"no deploy id", func(r *engine.BuildImageRequest) { r.DeployID = 0 }},
		{"no image", func(r *engine.BuildImageRequest) { r.Image = "" }},
		{"no archive token", func(r *engine.BuildImageRequest) { r.ArchiveToken = "" }},
		{"no report token", func(r *engine.BuildImageRequest) { r.ReportToken = "" }},
		{"relative archive URL", func(r *engine.BuildImageRequest) { r.ArchiveURL = "/api/archive" }},
		{"API host without scheme", func(r *engine.BuildImageRequest) { r.APIHost = "estela-api" }},
		{"project id too long", func(r *engine.BuildImageRequest) { r.ProjectID = strings.Repeat("p", 60) }},
		{"negative timeout", func(r *engine.BuildImageRequest) { r.Timeout = -time.Minute }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, client := newTestEngine(t, nil)
			req := sampleBuild()
			tt.modify(req)
			if _, err := e.BuildImage(t.Context(), req); !errors.Is(err, errdefs.ErrInvalid) {
				t.Errorf("BuildImage: error = %v, want ErrInvalid", err)
			}
			if n := len(client.Actions()); n != 0 {
				t.Errorf("BuildImage made %d API calls, want 0", n)
			}
		})
	}
}

func TestBuildImageJobFails(t *testing.T) {
	t.Parallel()
	e, client := newTestEngine(t, nil)
	client.PrependReactor("create", "jobs", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apiStatusError(403)
	})
	if _, err := e.BuildImage(t.Context(), sampleBuild()); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("BuildImage: error = %v, want ErrUnavailable", err)
	}
	secrets, err := client.CoreV1().Secrets("default").List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(secrets.Items) != 0 {
		t.Errorf("%d Secrets left after the Job failed to start, want 0", len(secrets.Items))
	}
}

func TestPrepareArtifactRejected(t *testing.T) {
	t.Parallel()
	e, _ := newTestEngine(t, nil)
	_, err := e.PrepareArtifact(t.Context(), &engine.PrepareArtifactRequest{ProjectID: "p7", DeployID: 1, Archive: strings.NewReader("zip")})
	if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), "BuildImage") {
		t.Errorf("PrepareArtifact: error = %v, want ErrInvalid naming BuildImage", err)
	}
}
