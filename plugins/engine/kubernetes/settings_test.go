package main

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-hclog"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/estela-go/estela-go/sdk/engine"
	"github.com/estela-go/estela-go/sdk/errdefs"
	"github.com/estela-go/estela-go/sdk/pluginapi"
)

// configureFake configures a new engine on a fake clientset and returns
// the paths of the error diagnostics and whether the settings were applied.
func configureFake(t *testing.T, raw []byte) (*kubeEngine, *pluginapi.ConfigureResponse) {
	t.Helper()
	e := newEngine(hclog.NewNullLogger())
	e.connect = func(*settings) (kubernetes.Interface, error) { return fake.NewClientset(), nil }
	resp, err := e.Configure(t.Context(), &pluginapi.ConfigureRequest{Config: raw})
	if err != nil {
		t.Fatalf("Configure: %v", err)
	}
	return e, resp
}

func errorPaths(resp *pluginapi.ConfigureResponse) []string {
	var paths []string
	for _, d := range resp.Diagnostics {
		if d.Severity == pluginapi.SeverityError {
			paths = append(paths, d.Path)
		}
	}
	return paths
}

func TestConfigureDiagnostics(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		settings string
		paths    []string
	}{
		{"empty", ``, nil},
		{"every setting valid", `{"namespace":"spiders","kubeconfig":"","context":"","image_pull_secret":"","node_selector":{"role":"spider"},
			"service_account":"estela","ttl_seconds_after_finished":0,"backoff_limit":1,"max_runtime":"6h","image_pull_policy":"IfNotPresent",
			"run_as_user":1001,"labels":{"team":"data"},"build":{"kaniko_image":"k:1","downloader_image":"d:1","timeout":"1h",
			"resources":{"requests":{"cpu":"500m"},"limits":{"memory":"2Gi"}},"kaniko_args":["--insecure"]}}`, nil},
		{"not an object", `[1]`, []string{""}},
		{"unknown setting", `{"namespce":"x"}`, []string{"namespce"}},
		{"unknown build setting", `{"build":{"kaniko":"x"}}`, []string{"build.kaniko"}},
		{"unknown resources key", `{"build":{"resources":{"request":{}}}}`, []string{"build.resources.request"}},
		{"wrong type", `{"namespace":3}`, []string{"namespace"}},
		{"wrong type in map", `{"node_selector":{"role":1}}`, []string{"node_selector"}},
		{"invalid namespace", `{"namespace":"Spiders"}`, []string{"namespace"}},
		{"invalid pull secret", `{"image_pull_secret":"reg cred"}`, []string{"image_pull_secret"}},
		{"invalid service account", `{"service_account":"-x"}`, []string{"service_account"}},
		{"invalid node selector value", `{"node_selector":{"role":"a b"}}`, []string{"node_selector.role"}},
		{"invalid label key", `{"labels":{"a b":"x"}}`, []string{"labels.a b"}},
		{"reserved label", `{"labels":{"app.kubernetes.io/managed-by":"helm"}}`, []string{"labels.app.kubernetes.io/managed-by"}},
		{"negative ttl", `{"ttl_seconds_after_finished":-1}`, []string{"ttl_seconds_after_finished"}},
		{"backoff too large", `{"backoff_limit":3000000000}`, []string{"backoff_limit"}},
		{"bad max runtime", `{"max_runtime":"forever"}`, []string{"max_runtime"}},
		{"max runtime under a second", `{"max_runtime":"10ms"}`, []string{"max_runtime"}},
		{"bad pull policy", `{"image_pull_policy":"always"}`, []string{"image_pull_policy"}},
		{"root user", `{"run_as_user":0}`, []string{"run_as_user"}},
		{"missing kubeconfig", `{"kubeconfig":"/nonexistent/kubeconfig"}`, []string{"kubeconfig"}},
		{"bad build timeout", `{"build":{"timeout":"soon"}}`, []string{"build.timeout"}},
		{"bad quantity", `{"build":{"resources":{"limits":{"memory":"lots"}}}}`, []string{"build.resources.limits.memory"}},
		{"unknown resource", `{"build":{"resources":{"requests":{"gpu":"1"}}}}`, []string{"build.resources.requests.gpu"}},
		{"several problems", `{"namespace":"A","run_as_user":-5,"max_runtime":"x"}`, []string{"max_runtime", "run_as_user", "namespace"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, resp := configureFake(t, []byte(tt.settings))
			if diff := cmp.Diff(tt.paths, errorPaths(resp)); diff != "" {
				t.Errorf("error paths mismatch (-want +got):\n%s\ndiagnostics: %+v", diff, resp.Diagnostics)
			}
			_, _, err := e.current()
			if applied := err == nil; applied != (tt.paths == nil) {
				t.Errorf("settings applied = %v, want %v", applied, tt.paths == nil)
			}
		})
	}
}

func TestConfigureDefaults(t *testing.T) {
	t.Parallel()
	e, resp := configureFake(t, []byte(`{}`))
	if len(resp.Diagnostics) != 0 {
		t.Fatalf("diagnostics = %+v, want none", resp.Diagnostics)
	}
	got, _, err := e.current()
	if err != nil {
		t.Fatal(err)
	}
	want := &settings{
		Namespace:       "default",
		ImagePullSecret: "regcred",
		TTLSeconds:      86400,
		ImagePullPolicy: corev1.PullAlways,
		RunAsUser:       1000,
		Build: buildSettings{
			KanikoImage:     "gcr.io/kaniko-project/executor:v1.23.2",
			DownloaderImage: "curlimages/curl:8.10.1",
			Timeout:         30 * time.Minute,
			Resources:       corev1.ResourceRequirements{Requests: resourceListOf("1", "1Gi"), Limits: resourceListOf("2", "2Gi")},
		},
	}
	if diff := cmp.Diff(want, got, quantityEqual); diff != "" {
		t.Errorf("settings mismatch (-want +got):\n%s", diff)
	}
}

func TestConfigureKeepsPreviousSettings(t *testing.T) {
	t.Parallel()
	e, _ := configureFake(t, []byte(`{"namespace":"spiders"}`))
	resp, err := e.Configure(t.Context(), &pluginapi.ConfigureRequest{Config: []byte(`{"namespace":"Bad"}`)})
	if err != nil || !resp.HasErrors() {
		t.Fatalf("Configure with a bad namespace = %+v, %v; want an error diagnostic", resp, err)
	}
	s, _, err := e.current()
	if err != nil || s.Namespace != "spiders" {
		t.Errorf("settings after a rejected Configure = %+v, %v; want the previous ones", s, err)
	}
}

func TestNotConfigured(t *testing.T) {
	t.Parallel()
	e := newEngine(hclog.NewNullLogger())
	if _, err := e.GetJob(t.Context(), &engine.GetJobRequest{Name: "sj-1-7"}); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("GetJob before Configure: error = %v, want ErrUnavailable", err)
	}
}

func TestConfigureKubeconfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "config")
	writeKubeconfig(t, kubeconfig, "http://127.0.0.1:1")
	broken := filepath.Join(dir, "broken")
	if err := os.WriteFile(broken, []byte("clusters: [oops"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		settings string
		paths    []string
	}{
		{"unknown context", `{"kubeconfig":"` + kubeconfig + `","context":"nope"}`, []string{"context"}},
		{"unreadable file", `{"kubeconfig":"` + broken + `"}`, []string{"kubeconfig"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp, err := newEngine(hclog.NewNullLogger()).Configure(t.Context(), &pluginapi.ConfigureRequest{Config: []byte(tt.settings)})
			if err != nil {
				t.Fatalf("Configure: %v", err)
			}
			if diff := cmp.Diff(tt.paths, errorPaths(resp)); diff != "" {
				t.Errorf("error paths mismatch (-want +got):\n%s\ndiagnostics: %+v", diff, resp.Diagnostics)
			}
		})
	}
}

// writeKubeconfig writes a kubeconfig whose only context "test" points at
// server without credentials.
func writeKubeconfig(t *testing.T, path, server string) {
	t.Helper()
	config := `apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: ` + server + `
contexts:
- name: test
  context:
    cluster: test
    user: test
current-context: test
users:
- name: test
  user: {}
`
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestConfigureUnreachableServer(t *testing.T) {
	t.Parallel()
	kubeconfig := filepath.Join(t.TempDir(), "config")
	// Port 1 on the loopback interface refuses connections at once.
	writeKubeconfig(t, kubeconfig, "http://127.0.0.1:1")
	e := newEngine(hclog.NewNullLogger())
	resp, err := e.Configure(t.Context(), &pluginapi.ConfigureRequest{Config: []byte(`{"kubeconfig":"` + kubeconfig + `"}`)})
	if err != nil {
		t.Fatalf("Configure: %v", err)
	}
	if len(resp.Diagnostics) != 1 || resp.Diagnostics[0].Severity != pluginapi.SeverityWarning || resp.Diagnostics[0].Path != "kubeconfig" {
		t.Errorf("diagnostics = %+v, want one warning about kubeconfig", resp.Diagnostics)
	}
	if _, _, err := e.current(); err != nil {
		t.Errorf("settings not applied: %v", err)
	}
	_, err = e.GetJob(t.Context(), &engine.GetJobRequest{Name: "sj-1-7"})
	if !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("GetJob with the API server down: error = %v, want ErrUnavailable", err)
	}
}
