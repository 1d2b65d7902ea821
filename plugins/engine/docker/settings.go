package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/docker/docker/client"

	"github.com/estela-go/estela-go/sdk/pluginapi"
)

// Defaults of the optional settings.
const (
	defaultStopGrace    = 10 * time.Second
	defaultRunAsUser    = "1000"
	defaultBuildTimeout = 30 * time.Minute
	defaultPullPolicy   = pullMissing
)

// Pull policies: when CreateJob pulls a job's image before creating its container.
const (
	// pullAlways pulls before every create, so a moved tag is picked up.
	pullAlways = "always"
	// pullMissing pulls only when the daemon does not have the image.
	pullMissing = "missing"
	// pullNever never pulls, so a missing image makes CreateJob fail.
	pullNever = "never"
)

var (
	apiVersionPattern = regexp.MustCompile(`^[0-9]+\.[0-9]+$`)
	// userPattern accepts what `docker run --user` accepts: a name or uid, optionally with a group.
	userPattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]*)?$`)
)

// settings is the plugin's validated settings block.
type settings struct {
	Host         string
	APIVersion   string
	Network      string
	Labels       map[string]string
	StopGrace    time.Duration
	Pull         string
	RunAsUser    string
	Push         bool
	BuildTimeout time.Duration
}

// rawSettings is the settings block as the host sends it.
type rawSettings struct {
	// Host is the daemon address, for example "unix:///var/run/docker.sock" or
	// "tcp://10.0.0.5:2376"; empty means $DOCKER_HOST, then the default socket.
	Host string `json:"host"`
	// APIVersion pins the Engine API version, for example "1.47"; empty means
	// negotiate it with the daemon.
	APIVersion string `json:"api_version"`
	// Network is the network jobs and deploy reports join; empty means the
	// daemon's default bridge.
	Network string `json:"network"`
	// Labels are added to every container the plugin creates.
	Labels map[string]string `json:"labels"`
	// StopGrace and BuildTimeout are Go duration strings such as "10s".
	StopGrace    string `json:"stop_grace"`
	Pull         string `json:"pull"`
	RunAsUser    string `json:"run_as_user"`
	Push         *bool  `json:"push"`
	BuildTimeout string `json:"build_timeout"`
}

var knownSettings = []string{"host", "api_version", "network", "labels", "stop_grace", "pull", "run_as_user", "push", "build_timeout"}

// parseSettings decodes and validates raw. It returns nil when resp received
// an error diagnostic.
func parseSettings(raw []byte, resp *pluginapi.ConfigureResponse) *settings {
	var in rawSettings
	if !decodeSettings(raw, &in, resp) {
		return nil
	}
	s := &settings{
		Host:         validateHost(in.Host, resp),
		APIVersion:   in.APIVersion,
		Network:      in.Network,
		Labels:       validateLabels(in.Labels, resp),
		StopGrace:    parseDuration(in.StopGrace, "stop_grace", defaultStopGrace, resp),
		Pull:         validatePull(in.Pull, resp),
		RunAsUser:    defaultRunAsUser,
		Push:         in.Push == nil || *in.Push,
		BuildTimeout: parseDuration(in.BuildTimeout, "build_timeout", defaultBuildTimeout, resp),
	}
	if s.APIVersion != "" && !apiVersionPattern.MatchString(s.APIVersion) {
		resp.AddError("api_version", fmt.Sprintf("invalid API version %q", s.APIVersion), `Use a version such as "1.47", or leave it out to negotiate with the daemon.`)
	}
	if in.RunAsUser != "" {
		s.RunAsUser = in.RunAsUser
		if !userPattern.MatchString(s.RunAsUser) {
			resp.AddError("run_as_user", fmt.Sprintf("invalid user %q", s.RunAsUser), `Use a uid or user name, optionally followed by ":" and a gid or group name, such as "1000" or "1000:1000".`)
		}
	}
	if resp.HasErrors() {
		return nil
	}
	return s
}

func decodeSettings(raw []byte, in *rawSettings, resp *pluginapi.ConfigureResponse) bool {
	if len(bytes.TrimSpace(raw)) == 0 {
		raw = []byte("{}")
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(raw, &keys); err != nil {
		resp.AddError("", "settings are not a JSON object", err.Error())
		return false
	}
	for _, key := range slices.Sorted(maps.Keys(keys)) {
		if !slices.Contains(knownSettings, key) {
			resp.AddError(key, "unknown setting", "Valid settings: "+strings.Join(knownSettings, ", ")+".")
		}
	}
	if err := json.Unmarshal(raw, in); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			resp.AddError(typeErr.Field, pluginapi.SettingTypeSummary(typeErr), "")
		} else {
			resp.AddError("", "invalid settings", err.Error())
		}
	}
	return !resp.HasErrors()
}

func parseDuration(value, path string, fallback time.Duration, resp *pluginapi.ConfigureResponse) time.Duration {
	if value == "" {
		return fallback
	}
	d, err := time.ParseDuration(value)
	if err != nil || d <= 0 {
		resp.AddError(path, fmt.Sprintf("invalid duration %q", value), `Use a positive Go duration such as "10s" or "2m".`)
		return fallback
	}
	return d
}

// hostSchemes are the address schemes the Docker client dials itself; ssh://
// needs the docker CLI's connection helper, which this plugin does not use.
var hostSchemes = []string{"unix", "tcp", "http", "https", "npipe"}

// validateHost returns host, or $DOCKER_HOST, or the platform's default
// socket, after checking that the Docker client can parse it.
func validateHost(host string, resp *pluginapi.ConfigureResponse) string {
	if host == "" {
		host = os.Getenv(client.EnvOverrideHost)
	}
	if host == "" {
		host = client.DefaultDockerHost
	}
	u, err := client.ParseHostURL(host)
	if err == nil && !slices.Contains(hostSchemes, u.Scheme) {
		err = fmt.Errorf("the scheme must be one of %v", hostSchemes)
	}
	if err != nil {
		resp.AddError("host", fmt.Sprintf("invalid Docker host %q", host), `Use an address such as "unix:///var/run/docker.sock" or "tcp://127.0.0.1:2375": `+err.Error())
	}
	return host
}

func validateLabels(labels map[string]string, resp *pluginapi.ConfigureResponse) map[string]string {
	for key := range labels {
		if key == "" {
			resp.AddError("labels", "empty label key", "Every label needs a non-empty key.")
		}
		if strings.HasPrefix(key, labelPrefix) {
			resp.AddError("labels."+key, "reserved label key", fmt.Sprintf("Keys starting with %q are set by the plugin itself.", labelPrefix))
		}
	}
	return labels
}

func validatePull(pull string, resp *pluginapi.ConfigureResponse) string {
	switch pull {
	case "":
		return defaultPullPolicy
	case pullAlways, pullMissing, pullNever:
		return pull
	}
	resp.AddError("pull", fmt.Sprintf("invalid pull policy %q", pull), fmt.Sprintf("Use %q, %q or %q.", pullAlways, pullMissing, pullNever))
	return ""
}
