package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/estela-go/estela-go/sdk/pluginapi"
)

// Defaults of the optional settings.
const (
	defaultAddress   = "http://127.0.0.1:4646"
	defaultStopGrace = 10 * time.Second
	defaultRunAsUser = "1000"
	// defaultMHzPerCore is an estimate of one core's clock, which Nomad
	// counts CPU in. Set mhz_per_core to the cpu.frequency attribute that
	// `nomad node status -verbose` shows for the job nodes.
	defaultMHzPerCore = 2000
)

var (
	// userPattern accepts a user name or uid, optionally with a group.
	userPattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]*)?$`)
	// namePattern is what Nomad accepts for namespace and region names.
	namePattern = regexp.MustCompile(`^[a-zA-Z0-9-]{1,128}$`)
)

// settings is the plugin's validated settings block.
type settings struct {
	Address     string
	Token       string
	Namespace   string
	Region      string
	Datacenters []string
	Meta        map[string]string
	StopGrace   time.Duration
	RunAsUser   string
	MHzPerCore  int
}

// rawSettings is the settings block as the host sends it.
type rawSettings struct {
	// Address is the Nomad HTTP API; empty means $NOMAD_ADDR, then
	// http://127.0.0.1:4646.
	Address string `json:"address"`
	// Token is the ACL token; empty means $NOMAD_TOKEN, then none.
	Token     string `json:"token"`
	Namespace string `json:"namespace"`
	Region    string `json:"region"`
	// Datacenters lists where jobs may run; empty means ["dc1"].
	Datacenters []string `json:"datacenters"`
	// Meta is added to the meta of every job.
	Meta map[string]string `json:"meta"`
	// StopGrace is a Go duration string such as "10s": the jobs' kill_timeout.
	StopGrace  string `json:"stop_grace"`
	RunAsUser  string `json:"run_as_user"`
	MHzPerCore *int   `json:"mhz_per_core"`
}

var knownSettings = []string{"address", "token", "namespace", "region", "datacenters", "meta", "stop_grace", "run_as_user", "mhz_per_core"}

// parseSettings decodes and validates raw. It returns nil when resp received
// an error diagnostic.
func parseSettings(raw []byte, resp *pluginapi.ConfigureResponse) *settings {
	var in rawSettings
	if !decodeSettings(raw, &in, resp) {
		return nil
	}
	s := &settings{
		Address:     validateAddress(firstNonEmpty(in.Address, os.Getenv("NOMAD_ADDR"), defaultAddress), resp),
		Token:       firstNonEmpty(in.Token, os.Getenv("NOMAD_TOKEN")),
		Namespace:   validateName("namespace", firstNonEmpty(in.Namespace, os.Getenv("NOMAD_NAMESPACE")), resp),
		Region:      validateName("region", firstNonEmpty(in.Region, os.Getenv("NOMAD_REGION")), resp),
		Datacenters: validateDatacenters(in.Datacenters, resp),
		Meta:        validateMeta(in.Meta, resp),
		StopGrace:   parseDuration(in.StopGrace, "stop_grace", defaultStopGrace, resp),
		RunAsUser:   firstNonEmpty(in.RunAsUser, defaultRunAsUser),
		MHzPerCore:  defaultMHzPerCore,
	}
	if !userPattern.MatchString(s.RunAsUser) {
		resp.AddError("run_as_user", fmt.Sprintf("invalid user %q", s.RunAsUser), `Use a uid or user name, optionally followed by ":" and a group, such as "1000".`)
	}
	if in.MHzPerCore != nil {
		s.MHzPerCore = *in.MHzPerCore
		if s.MHzPerCore <= 0 {
			resp.AddError("mhz_per_core", "must be greater than 0", "Set it to the clock of one core of the job nodes in MHz, such as 2400.")
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

func firstNonEmpty(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
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

func validateAddress(address string, resp *pluginapi.ConfigureResponse) string {
	u, err := url.Parse(address)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "unix") || (u.Host == "" && u.Scheme != "unix") {
		resp.AddError("address", fmt.Sprintf("invalid Nomad address %q", address), `Use the HTTP API address of a Nomad agent, such as "http://127.0.0.1:4646".`)
	}
	return strings.TrimRight(address, "/")
}

func validateName(path, name string, resp *pluginapi.ConfigureResponse) string {
	if name != "" && !namePattern.MatchString(name) {
		resp.AddError(path, fmt.Sprintf("invalid %s %q", path, name), "Use up to 128 letters, digits and dashes.")
	}
	return name
}

func validateDatacenters(dcs []string, resp *pluginapi.ConfigureResponse) []string {
	if len(dcs) == 0 {
		return []string{"dc1"}
	}
	for i, dc := range dcs {
		if strings.TrimSpace(dc) == "" {
			resp.AddError(fmt.Sprintf("datacenters.%d", i), "empty datacenter name", `Use names such as "dc1", or "*" for every datacenter.`)
		}
	}
	return dcs
}

func validateMeta(meta map[string]string, resp *pluginapi.ConfigureResponse) map[string]string {
	for key := range meta {
		if !metaKeyPattern.MatchString(key) {
			resp.AddError("meta."+key, "invalid meta key", "Use letters, digits, '_' and '-' only, which Nomad can interpolate.")
		}
		if strings.HasPrefix(key, metaPrefix) {
			resp.AddError("meta."+key, "reserved meta key", fmt.Sprintf("Keys starting with %q are set by the plugin itself.", metaPrefix))
		}
	}
	return meta
}
