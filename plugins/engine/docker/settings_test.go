package main

import (
	"testing"
	"time"

	"github.com/docker/docker/client"
	"github.com/google/go-cmp/cmp"

	"github.com/estela-go/estela-go/sdk/pluginapi"
)

func TestParseSettingsDefaults(t *testing.T) {
	t.Setenv(client.EnvOverrideHost, "")
	resp := &pluginapi.ConfigureResponse{}

	got := parseSettings([]byte(`{}`), resp)

	want := &settings{
		Host:         client.DefaultDockerHost,
		StopGrace:    10 * time.Second,
		Pull:         "missing",
		RunAsUser:    "1000",
		Push:         true,
		BuildTimeout: 30 * time.Minute,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("settings mismatch (-want +got):\n%s", diff)
	}
	if len(resp.Diagnostics) != 0 {
		t.Errorf("diagnostics = %+v, want none", resp.Diagnostics)
	}
}

func TestParseSettingsHostFromEnvironment(t *testing.T) {
	t.Setenv(client.EnvOverrideHost, "tcp://10.0.0.5:2375")

	got := parseSettings(nil, &pluginapi.ConfigureResponse{})

	if got == nil || got.Host != "tcp://10.0.0.5:2375" {
		t.Errorf("settings = %+v, want the host of DOCKER_HOST", got)
	}
}

func TestParseSettingsAll(t *testing.T) {
	t.Parallel()
	raw := `{"host":"tcp://127.0.0.1:2375","api_version":"1.47","network":"estela","labels":{"team":"data"},
		"stop_grace":"30s","pull":"always","run_as_user":"1000:1000","push":false,"build_timeout":"1h"}`
	resp := &pluginapi.ConfigureResponse{}

	got := parseSettings([]byte(raw), resp)

	want := &settings{
		Host: "tcp://127.0.0.1:2375", APIVersion: "1.47", Network: "estela", Labels: map[string]string{"team": "data"},
		StopGrace: 30 * time.Second, Pull: "always", RunAsUser: "1000:1000", Push: false, BuildTimeout: time.Hour,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("settings mismatch (-want +got):\n%s", diff)
	}
}

func TestParseSettingsErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		raw       string
		wantPaths []string
	}{
		{`[1]`, []string{""}},
		{`{"hots":"x"}`, []string{"hots"}},
		{`{"host":"ftp://x"}`, []string{"host"}},
		{`{"api_version":"latest"}`, []string{"api_version"}},
		{`{"stop_grace":"soon"}`, []string{"stop_grace"}},
		{`{"stop_grace":"-1s"}`, []string{"stop_grace"}},
		{`{"build_timeout":"0s"}`, []string{"build_timeout"}},
		{`{"pull":"sometimes"}`, []string{"pull"}},
		{`{"run_as_user":"root user"}`, []string{"run_as_user"}},
		{`{"labels":{"io.estela-go.job-name":"x"}}`, []string{"labels.io.estela-go.job-name"}},
		{`{"push":"yes"}`, []string{"push"}},
		{`{"labels":["a"]}`, []string{"labels"}},
	}
	for _, c := range cases {
		resp := &pluginapi.ConfigureResponse{}
		if got := parseSettings([]byte(c.raw), resp); got != nil {
			t.Errorf("%s: settings = %+v, want nil", c.raw, got)
		}
		var paths []string
		for _, d := range resp.Diagnostics {
			paths = append(paths, d.Path)
		}
		if diff := cmp.Diff(c.wantPaths, paths); diff != "" {
			t.Errorf("%s: diagnostic paths mismatch (-want +got):\n%s", c.raw, diff)
		}
	}
}

func TestConfigureKeepsSettingsOnError(t *testing.T) {
	t.Parallel()
	d := newFakeDaemon(t)
	e := newTestEngine(t, d, map[string]any{"network": "first"})

	resp, err := e.Configure(t.Context(), configureRequest(t, map[string]any{"host": d.host(), "pull": "bad"}))
	if err != nil {
		t.Fatalf("Configure: %v", err)
	}

	s, _, err := e.current()
	if err != nil {
		t.Fatal(err)
	}
	if !resp.HasErrors() || s.Network != "first" {
		t.Errorf("after rejected settings: errors %v, network %q; want errors and the first settings kept", resp.HasErrors(), s.Network)
	}
}
