package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/estela-go/estela-go/sdk/pluginapi"
)

// settings is the plugin's settings block.
type settings struct {
	// DataDir contains the stored archives, under projects/.
	DataDir string `json:"data_dir"`
	// Registry is nil when no registry credentials are configured.
	Registry *registrySettings `json:"registry"`
}

// registrySettings are the credentials RegistryAuth returns.
type registrySettings struct {
	Server   string `json:"server"`
	Username string `json:"username"`
	Password string `json:"password"`
}

var (
	knownSettings         = []string{"data_dir", "registry"}
	knownRegistrySettings = []string{"server", "username", "password"}
)

// parseSettings decodes and validates raw, creating the data directory. It
// returns nil settings when resp received an error diagnostic.
func parseSettings(raw []byte, resp *pluginapi.ConfigureResponse) *settings {
	var s settings
	if !decodeSettings(raw, &s, resp) {
		return nil
	}
	validateDataDir(&s, resp)
	validateRegistry(s.Registry, resp)
	if resp.HasErrors() {
		return nil
	}
	return &s
}

// decodeSettings reports unknown keys and wrong types as diagnostics with
// the path of the offending setting.
func decodeSettings(raw []byte, s *settings, resp *pluginapi.ConfigureResponse) bool {
	if len(bytes.TrimSpace(raw)) == 0 {
		raw = []byte("{}")
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(raw, &keys); err != nil {
		resp.AddError("", "settings are not a JSON object", err.Error())
		return false
	}
	reportUnknownKeys(keys, knownSettings, "", resp)
	var registryKeys map[string]json.RawMessage
	if json.Unmarshal(keys["registry"], &registryKeys) == nil {
		reportUnknownKeys(registryKeys, knownRegistrySettings, "registry.", resp)
	}
	if err := json.Unmarshal(raw, s); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			resp.AddError(typeErr.Field, pluginapi.SettingTypeSummary(typeErr), "")
		} else {
			resp.AddError("", "invalid settings", err.Error())
		}
		return false
	}
	return !resp.HasErrors()
}

func reportUnknownKeys(keys map[string]json.RawMessage, known []string, prefix string, resp *pluginapi.ConfigureResponse) {
	for _, key := range slices.Sorted(maps.Keys(keys)) {
		if slices.Contains(known, key) {
			continue
		}
		resp.AddError(prefix+key, "unknown setting", "Valid settings here: "+strings.Join(known, ", ")+".")
	}
}

func validateDataDir(s *settings, resp *pluginapi.ConfigureResponse) {
	if s.DataDir == "" {
		resp.AddError("data_dir", "missing required setting", "Set data_dir to the directory where project archives are stored.")
		return
	}
	abs, err := filepath.Abs(s.DataDir)
	if err != nil {
		resp.AddError("data_dir", "invalid path", err.Error())
		return
	}
	s.DataDir = abs
	if err := os.MkdirAll(filepath.Join(abs, projectsDir), 0o750); err != nil {
		resp.AddError("data_dir", "cannot create the data directory", err.Error())
	}
}

func validateRegistry(r *registrySettings, resp *pluginapi.ConfigureResponse) {
	if r == nil {
		return
	}
	required := []struct{ path, value string }{
		{"registry.server", r.Server},
		{"registry.username", r.Username},
		{"registry.password", r.Password},
	}
	for _, field := range required {
		if field.value == "" {
			resp.AddError(field.path, "missing required setting", "Set it, or remove the registry block when no registry needs credentials.")
		}
	}
}
