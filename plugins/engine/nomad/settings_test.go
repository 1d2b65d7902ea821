package main

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/estela-go/estela-go/sdk/pluginapi"
)

func clearNomadEnv(t *testing.T) {
	for _, key := range []string{"NOMAD_ADDR", "NOMAD_TOKEN", "NOMAD_NAMESPACE", "NOMAD_REGION"} {
		t.Setenv(key, "")
	}
}

func TestParseSettingsDefaults(t *testing.T) {
	clearNomadEnv(t)
	resp := &pluginapi.ConfigureResponse{}

	got := parseSettings([]byte(`{}`), resp)

	want := &settings{
		Address: "http://127.0.0.1:4646", Datacenters: []string{"dc1"}, StopGrace: 10 * time.Second,
		RunAsUser: "1000", MHzPerCore: 2000,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("settings mismatch (-want +got):\n%s", diff)
	}
	if len(resp.Diagnostics) != 0 {
		t.Errorf("diagnostics = %+v, want none", resp.Diagnostics)
	}
}

func TestParseSettingsEnvironment(t *testing.T) {
	clearNomadEnv(t)
	t.Setenv("NOMAD_ADDR", "https://nomad.example.com:4646/")
	t.Setenv("NOMAD_TOKEN", "env-token")
	t.Setenv("NOMAD_NAMESPACE", "spiders")

	got := parseSettings(nil, &pluginapi.ConfigureResponse{})

	if got == nil || got.Address != "https://nomad.example.com:4646" || got.Token != "env-token" || got.Namespace != "spiders" {
		t.Errorf("settings = %+v, want address, token and namespace from the environment", got)
	}
}

func TestParseSettingsAll(t *testing.T) {
	clearNomadEnv(t)
	raw := `{"address":"http://10.0.0.1:4646","token":"t","namespace":"estela","region":"eu","datacenters":["a","b"],
		"meta":{"team":"data"},"stop_grace":"30s","run_as_user":"1000:1000","mhz_per_core":2400}`

	got := parseSettings([]byte(raw), &pluginapi.ConfigureResponse{})

	want := &settings{
		Address: "http://10.0.0.1:4646", Token: "t", Namespace: "estela", Region: "eu", Datacenters: []string{"a", "b"},
		Meta: map[string]string{"team": "data"}, StopGrace: 30 * time.Second, RunAsUser: "1000:1000", MHzPerCore: 2400,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("settings mismatch (-want +got):\n%s", diff)
	}
}

func TestParseSettingsErrors(t *testing.T) {
	clearNomadEnv(t)
	cases := []struct {
		raw       string
		wantPaths []string
	}{
		{`"x"`, []string{""}},
		{`{"adress":"x"}`, []string{"adress"}},
		{`{"address":"127.0.0.1:4646"}`, []string{"address"}},
		{`{"namespace":"bad/ns"}`, []string{"namespace"}},
		{`{"region":"bad region"}`, []string{"region"}},
		{`{"datacenters":["dc1",""]}`, []string{"datacenters.1"}},
		{`{"meta":{"a.b":"x"}}`, []string{"meta.a.b"}},
		{`{"meta":{"estela_go_labels":"x"}}`, []string{"meta.estela_go_labels"}},
		{`{"stop_grace":"forever"}`, []string{"stop_grace"}},
		{`{"run_as_user":"a b"}`, []string{"run_as_user"}},
		{`{"mhz_per_core":0}`, []string{"mhz_per_core"}},
		{`{"datacenters":"dc1"}`, []string{"datacenters"}},
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
