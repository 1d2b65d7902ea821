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

// defaultPrefix is the key prefix of the archives when the prefix setting is
// absent.
const defaultPrefix = "projects/"

// settings is the plugin's settings block.
type settings struct {
	// Bucket is the S3 bucket that contains the archives.
	Bucket string `json:"bucket"`
	// Prefix starts every archive key. Nil means defaultPrefix, and an empty
	// string puts the archives at the top of the bucket.
	Prefix *string `json:"prefix"`
	// Region is the AWS region. Empty means the one of the AWS configuration
	// chain (AWS_REGION, the shared config file).
	Region string `json:"region"`
	// Endpoint is the URL of an S3-compatible store such as MinIO. Empty
	// means AWS S3.
	Endpoint string `json:"endpoint"`
	// UsePathStyle selects path-style addressing (endpoint/bucket/key). Nil
	// means true when Endpoint is set and false otherwise.
	UsePathStyle *bool `json:"use_path_style"`
	// ECR is nil when RegistryAuth has no registry to serve.
	ECR *ecrSettings `json:"ecr"`
}

// ecrSettings selects the ECR registry whose credentials RegistryAuth returns.
type ecrSettings struct {
	// RegistryID is the AWS account id of the registry. Empty means the
	// account of the plugin's AWS identity.
	RegistryID string `json:"registry_id"`
	// Region is the registry's region. Empty means the S3 region.
	Region string `json:"region"`
	// Endpoint is the URL of the ECR API. Empty means the AWS one.
	Endpoint string `json:"endpoint"`
}

var (
	knownSettings    = []string{"bucket", "prefix", "region", "endpoint", "use_path_style", "ecr"}
	knownECRSettings = []string{"registry_id", "region", "endpoint"}

	// bucketPattern follows the S3 bucket naming rules: 3 to 63 lower-case
	// letters, digits, dots and hyphens, starting and ending with a letter or
	// a digit.
	bucketPattern     = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	registryIDPattern = regexp.MustCompile(`^[0-9]{12}$`)
)

// prefix returns the key prefix of the archives.
func (s *settings) prefix() string {
	if s.Prefix == nil {
		return defaultPrefix
	}
	return *s.Prefix
}

// usePathStyle returns whether the S3 client uses path-style addressing.
func (s *settings) usePathStyle() bool {
	if s.UsePathStyle == nil {
		return s.Endpoint != ""
	}
	return *s.UsePathStyle
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
	validateEndpoint("endpoint", s.Endpoint, resp)
	if s.ECR != nil {
		validateECR(s.ECR, resp)
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
	var ecrKeys map[string]json.RawMessage
	if json.Unmarshal(keys["ecr"], &ecrKeys) == nil {
		reportUnknownKeys(ecrKeys, knownECRSettings, "ecr.", resp)
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

func validateBucket(bucket string, resp *pluginapi.ConfigureResponse) {
	switch {
	case bucket == "":
		resp.AddError("bucket", "missing required setting", "Set bucket to the S3 bucket where project archives are stored.")
	case !bucketPattern.MatchString(bucket):
		resp.AddError("bucket", "invalid bucket name", fmt.Sprintf("%q is not a valid S3 bucket name: use 3 to 63 lower-case letters, digits, dots and hyphens.", bucket))
	}
}

func validatePrefix(prefix *string, resp *pluginapi.ConfigureResponse) {
	if prefix == nil || *prefix == "" {
		return
	}
	if strings.HasPrefix(*prefix, "/") {
		resp.AddError("prefix", "invalid prefix", "S3 keys do not start with a slash: remove the leading slash.")
		return
	}
	if !strings.HasSuffix(*prefix, "/") {
		resp.AddWarning("prefix", "prefix does not end with a slash", fmt.Sprintf("Keys will read %s<project_id>/<deploy_id>.zip.", *prefix))
	}
}

// validateEndpoint accepts an empty value or an absolute http or https URL.
func validateEndpoint(path, endpoint string, resp *pluginapi.ConfigureResponse) {
	if endpoint == "" {
		return
	}
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		resp.AddError(path, "invalid endpoint", fmt.Sprintf("%q is not an http or https URL such as https://minio.example.com:9000.", endpoint))
	}
}

func validateECR(e *ecrSettings, resp *pluginapi.ConfigureResponse) {
	if e.RegistryID != "" && !registryIDPattern.MatchString(e.RegistryID) {
		resp.AddError("ecr.registry_id", "invalid registry id", "An ECR registry id is the 12-digit AWS account id of the registry.")
	}
	validateEndpoint("ecr.endpoint", e.Endpoint, resp)
}
