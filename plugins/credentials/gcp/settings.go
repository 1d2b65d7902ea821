package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/estela-go/estela-go/sdk/pluginapi"
)

const (
	// defaultPrefix is the name prefix of the archives when the prefix
	// setting is absent.
	defaultPrefix = "projects/"
	// defaultEndpoint is the base URL of the Cloud Storage JSON API.
	defaultEndpoint = "https://storage.googleapis.com"
	// cloudPlatformScope is the default scope of registry tokens. Artifact
	// Registry accepts it for pushes and pulls.
	cloudPlatformScope = "https://www.googleapis.com/auth/cloud-platform"
)

// settings is the plugin's settings block.
type settings struct {
	// Bucket is the Cloud Storage bucket that contains the archives.
	Bucket string `json:"bucket"`
	// Prefix starts every archive's object name. Nil means defaultPrefix,
	// and an empty string puts the archives at the top of the bucket.
	Prefix *string `json:"prefix"`
	// CredentialsFile is the path of a service account key file. Empty
	// means Application Default Credentials.
	CredentialsFile string `json:"credentials_file"`
	// Endpoint is the base URL of the Cloud Storage JSON API. Empty means
	// defaultEndpoint.
	Endpoint string `json:"endpoint"`
	// Registry is nil when RegistryAuth has no registry to serve.
	Registry *registrySettings `json:"registry"`
}

// registrySettings selects the Artifact Registry host whose credentials
// RegistryAuth returns.
type registrySettings struct {
	// Server is the registry host, for example europe-docker.pkg.dev.
	Server string `json:"server"`
	// Scopes are the OAuth2 scopes of the access token. Empty means
	// cloudPlatformScope.
	Scopes []string `json:"scopes"`
}

var (
	knownSettings         = []string{"bucket", "prefix", "credentials_file", "endpoint", "registry"}
	knownRegistrySettings = []string{"server", "scopes"}

	// bucketPattern follows the Cloud Storage bucket naming rules:
	// lower-case letters, digits, dashes, underscores and dots, starting and
	// ending with a letter or a digit. validateBucket checks the lengths.
	bucketPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*[a-z0-9]$`)
)

// prefix returns the name prefix of the archives.
func (s *settings) prefix() string {
	if s.Prefix == nil {
		return defaultPrefix
	}
	return *s.Prefix
}

// endpoint returns the base URL of the Cloud Storage JSON API, without a
// trailing slash.
func (s *settings) endpoint() string {
	if s.Endpoint == "" {
		return defaultEndpoint
	}
	return strings.TrimSuffix(s.Endpoint, "/")
}

// scopes returns the OAuth2 scopes of registry tokens.
func (r *registrySettings) scopes() []string {
	if len(r.Scopes) == 0 {
		return []string{cloudPlatformScope}
	}
	return r.Scopes
}

// parseSettings decodes and validates raw. It returns nil settings when resp
// received an error diagnostic.
func parseSettings(raw []byte, resp *pluginapi.ConfigureResponse) *settings {
	var s settings
	if !decodeSettings(raw, &s, resp) {
		return nil
	}
	validateBucket(s.Bucket, resp)
	validatePrefix(s.Prefix, resp)
	validateEndpoint(s.Endpoint, resp)
	if s.Registry != nil {
		validateRegistry(s.Registry, resp)
	}
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
		if !slices.Contains(known, key) {
			resp.AddError(prefix+key, "unknown setting", "Valid settings here: "+strings.Join(known, ", ")+".")
		}
	}
}

// validateBucket checks the Cloud Storage naming rules: 3 to 63
// characters, or up to 222 when the name contains dots, with every
// dot-separated part at most 63 characters long.
func validateBucket(bucket string, resp *pluginapi.ConfigureResponse) {
	if bucket == "" {
		resp.AddError("bucket", "missing required setting", "Set bucket to the Cloud Storage bucket where project archives are stored.")
		return
	}
	valid := bucketPattern.MatchString(bucket) && len(bucket) >= 3 && len(bucket) <= 222
	for _, part := range strings.Split(bucket, ".") {
		valid = valid && len(part) <= 63
	}
	if !valid {
		resp.AddError("bucket", "invalid bucket name", fmt.Sprintf("%q is not a valid Cloud Storage bucket name: use 3 to 63 lower-case letters, digits, dashes, underscores and dots.", bucket))
	}
}

func validatePrefix(prefix *string, resp *pluginapi.ConfigureResponse) {
	if prefix == nil || *prefix == "" {
		return
	}
	if strings.HasPrefix(*prefix, "/") {
		resp.AddError("prefix", "invalid prefix", "Object names do not start with a slash: remove the leading slash.")
		return
	}
	if !strings.HasSuffix(*prefix, "/") {
		resp.AddWarning("prefix", "prefix does not end with a slash", fmt.Sprintf("Object names will read %s<project_id>/<deploy_id>.zip.", *prefix))
	}
}

// validateEndpoint accepts an empty value or an absolute http or https URL.
func validateEndpoint(endpoint string, resp *pluginapi.ConfigureResponse) {
	if endpoint == "" {
		return
	}
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		resp.AddError("endpoint", "invalid endpoint", fmt.Sprintf("%q is not an http or https URL such as %s.", endpoint, defaultEndpoint))
	}
}

func validateRegistry(r *registrySettings, resp *pluginapi.ConfigureResponse) {
	switch {
	case r.Server == "":
		resp.AddError("registry.server", "missing required setting", "Set it to the registry host, such as europe-docker.pkg.dev, or remove the registry block.")
	case strings.Contains(r.Server, "/"):
		resp.AddError("registry.server", "invalid registry host", fmt.Sprintf("%q is not a host: use a name such as europe-docker.pkg.dev, without scheme or path.", r.Server))
	}
	for i, scope := range r.Scopes {
		if strings.TrimSpace(scope) == "" {
			resp.AddError(fmt.Sprintf("registry.scopes.%d", i), "empty scope", "Remove it, or set an OAuth2 scope such as "+cloudPlatformScope+".")
		}
	}
}
