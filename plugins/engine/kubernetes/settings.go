package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/estela-go/estela-go/sdk/pluginapi"
)

// Defaults of the optional settings. The job defaults are those of estela's
// Kubernetes engine; the Kaniko version is the one this plugin was written for.
const (
	defaultNamespace       = "default"
	defaultPullSecret      = "regcred"
	defaultTTLSeconds      = 86400
	defaultPullPolicy      = corev1.PullAlways
	defaultRunAsUser       = 1000
	defaultKanikoImage     = "gcr.io/kaniko-project/executor:v1.23.2"
	defaultDownloaderImage = "curlimages/curl:8.10.1"
	defaultBuildTimeout    = 30 * time.Minute
)

// settings is the plugin's validated settings block.
type settings struct {
	Namespace string
	// Kubeconfig and Context choose the cluster; both empty means the
	// in-cluster configuration, then $KUBECONFIG or ~/.kube/config.
	Kubeconfig      string
	Context         string
	ImagePullSecret string
	NodeSelector    map[string]string
	ServiceAccount  string
	TTLSeconds      int32
	BackoffLimit    int32
	// MaxRuntime applies to jobs whose spec sets none; zero means no limit.
	MaxRuntime      time.Duration
	ImagePullPolicy corev1.PullPolicy
	RunAsUser       int64
	Labels          map[string]string
	Build           buildSettings
}

// buildSettings configures the image build Jobs of BuildImage.
type buildSettings struct {
	KanikoImage     string
	DownloaderImage string
	Timeout         time.Duration
	// Resources are those of the Kaniko container.
	Resources corev1.ResourceRequirements
	// KanikoArgs are added to the executor's flags, for example
	// "--insecure" for a registry served over plain HTTP.
	KanikoArgs []string
}

// rawSettings is the settings block as the host sends it. Pointers tell an
// absent setting from a zero one.
type rawSettings struct {
	Namespace       string            `json:"namespace"`
	Kubeconfig      string            `json:"kubeconfig"`
	Context         string            `json:"context"`
	ImagePullSecret *string           `json:"image_pull_secret"`
	NodeSelector    map[string]string `json:"node_selector"`
	ServiceAccount  string            `json:"service_account"`
	TTLSeconds      *int64            `json:"ttl_seconds_after_finished"`
	BackoffLimit    *int64            `json:"backoff_limit"`
	MaxRuntime      string            `json:"max_runtime"`
	ImagePullPolicy string            `json:"image_pull_policy"`
	RunAsUser       *int64            `json:"run_as_user"`
	Labels          map[string]string `json:"labels"`
	Build           rawBuildSettings  `json:"build"`
}

type rawBuildSettings struct {
	KanikoImage     string       `json:"kaniko_image"`
	DownloaderImage string       `json:"downloader_image"`
	Timeout         string       `json:"timeout"`
	Resources       rawResources `json:"resources"`
	KanikoArgs      []string     `json:"kaniko_args"`
}

// rawResources has the shape of a container's resources in a Kubernetes
// manifest, with quantities such as "500m" or "1Gi".
type rawResources struct {
	Requests map[string]string `json:"requests"`
	Limits   map[string]string `json:"limits"`
}

var (
	knownSettings      = []string{"namespace", "kubeconfig", "context", "image_pull_secret", "node_selector", "service_account", "ttl_seconds_after_finished", "backoff_limit", "max_runtime", "image_pull_policy", "run_as_user", "labels", "build"}
	knownBuildSettings = []string{"kaniko_image", "downloader_image", "timeout", "resources", "kaniko_args"}
	knownResourceKeys  = []string{"requests", "limits"}
	pullPolicies       = []string{string(corev1.PullAlways), string(corev1.PullIfNotPresent), string(corev1.PullNever)}
)

// defaultBuildResources are the Kaniko container's resources in estela.
func defaultBuildResources() corev1.ResourceRequirements {
	return corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("1Gi")},
		Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("2Gi")},
	}
}

// parseSettings decodes and validates raw. It returns nil when resp
// received an error diagnostic. It does not contact the cluster.
func parseSettings(raw []byte, resp *pluginapi.ConfigureResponse) *settings {
	var in rawSettings
	if !decodeSettings(raw, &in, resp) {
		return nil
	}
	s := &settings{
		Namespace:       orDefault(in.Namespace, defaultNamespace),
		Kubeconfig:      in.Kubeconfig,
		Context:         in.Context,
		ImagePullSecret: defaultPullSecret,
		NodeSelector:    in.NodeSelector,
		ServiceAccount:  in.ServiceAccount,
		ImagePullPolicy: corev1.PullPolicy(orDefault(in.ImagePullPolicy, string(defaultPullPolicy))),
		Labels:          in.Labels,
	}
	if in.ImagePullSecret != nil {
		s.ImagePullSecret = *in.ImagePullSecret
	}

	s.TTLSeconds = parseInt32(in.TTLSeconds, "ttl_seconds_after_finished", defaultTTLSeconds, resp)
	s.BackoffLimit = parseInt32(in.BackoffLimit, "backoff_limit", 0, resp)
	s.MaxRuntime = parseDuration(in.MaxRuntime, "max_runtime", 0, resp)
	s.RunAsUser = parseRunAsUser(in.RunAsUser, resp)

	validateNames(s, resp)
	validateLabelMap(s.NodeSelector, "node_selector", resp)
	validateLabelMap(s.Labels, "labels", resp)
	if _, reserved := s.Labels[labelManagedBy]; reserved {
		resp.AddError("labels."+labelManagedBy, "reserved label", "The plugin sets "+labelManagedBy+"="+managedBy+" on every Job it creates; remove it from labels.")
	}
	if !slices.Contains(pullPolicies, string(s.ImagePullPolicy)) {
		resp.AddError("image_pull_policy", fmt.Sprintf("invalid image pull policy %q", s.ImagePullPolicy), fmt.Sprintf("Use one of %v.", pullPolicies))
	}
	if s.Kubeconfig != "" {
		if _, err := os.Stat(s.Kubeconfig); err != nil {
			resp.AddError("kubeconfig", "cannot read the kubeconfig file", err.Error())
		}
	}

	s.Build = parseBuildSettings(in.Build, resp)
	if resp.HasErrors() {
		return nil
	}
	return s
}

func parseBuildSettings(in rawBuildSettings, resp *pluginapi.ConfigureResponse) buildSettings {
	return buildSettings{
		KanikoImage:     orDefault(in.KanikoImage, defaultKanikoImage),
		DownloaderImage: orDefault(in.DownloaderImage, defaultDownloaderImage),
		Timeout:         parseDuration(in.Timeout, "build.timeout", defaultBuildTimeout, resp),
		Resources:       parseResources(in.Resources, "build.resources", resp),
		KanikoArgs:      in.KanikoArgs,
	}
}

// decodeSettings reports unknown keys and type errors as diagnostics.
func decodeSettings(raw []byte, in *rawSettings, resp *pluginapi.ConfigureResponse) bool {
	if len(bytes.TrimSpace(raw)) == 0 {
		raw = []byte("{}")
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(raw, &keys); err != nil {
		resp.AddError("", "settings are not a JSON object", err.Error())
		return false
	}
	reportUnknownKeys(keys, "", knownSettings, resp)
	if build, ok := keys["build"]; ok {
		var buildKeys map[string]json.RawMessage
		if json.Unmarshal(build, &buildKeys) == nil {
			reportUnknownKeys(buildKeys, "build.", knownBuildSettings, resp)
			if res, ok := buildKeys["resources"]; ok {
				var resKeys map[string]json.RawMessage
				if json.Unmarshal(res, &resKeys) == nil {
					reportUnknownKeys(resKeys, "build.resources.", knownResourceKeys, resp)
				}
			}
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

func reportUnknownKeys(keys map[string]json.RawMessage, prefix string, known []string, resp *pluginapi.ConfigureResponse) {
	for _, key := range slices.Sorted(maps.Keys(keys)) {
		if !slices.Contains(known, key) {
			resp.AddError(prefix+key, "unknown setting", "Valid settings here: "+strings.Join(known, ", ")+".")
		}
	}
}

func orDefault(value, fallback string) string {
	if value == "" {
		return fallback
	}
	return value
}

// parseInt32 checks that a count is between 0 and the int32 maximum, the
// range of the Job fields it sets.
func parseInt32(value *int64, path string, fallback int32, resp *pluginapi.ConfigureResponse) int32 {
	if value == nil {
		return fallback
	}
	if *value < 0 || *value > 1<<31-1 {
		resp.AddError(path, fmt.Sprintf("invalid value %d", *value), "Use a number from 0 to 2147483647.")
		return fallback
	}
	return int32(*value)
}

func parseRunAsUser(value *int64, resp *pluginapi.ConfigureResponse) int64 {
	if value == nil {
		return defaultRunAsUser
	}
	if *value <= 0 {
		resp.AddError("run_as_user", fmt.Sprintf("invalid user id %d", *value), "Job pods run with runAsNonRoot, so use a user id greater than 0.")
	}
	return *value
}

func parseDuration(value, path string, fallback time.Duration, resp *pluginapi.ConfigureResponse) time.Duration {
	if value == "" {
		return fallback
	}
	d, err := time.ParseDuration(value)
	if err != nil || d < time.Second {
		resp.AddError(path, fmt.Sprintf("invalid duration %q", value), `Use a Go duration of at least one second, such as "90s" or "2h".`)
		return fallback
	}
	return d
}

// validateNames checks the settings that name Kubernetes objects.
func validateNames(s *settings, resp *pluginapi.ConfigureResponse) {
	for _, msg := range validation.IsDNS1123Label(s.Namespace) {
		resp.AddError("namespace", fmt.Sprintf("invalid namespace %q", s.Namespace), msg)
	}
	if s.ImagePullSecret != "" {
		for _, msg := range validation.IsDNS1123Subdomain(s.ImagePullSecret) {
			resp.AddError("image_pull_secret", fmt.Sprintf("invalid Secret name %q", s.ImagePullSecret), msg)
		}
	}
	if s.ServiceAccount != "" {
		for _, msg := range validation.IsDNS1123Subdomain(s.ServiceAccount) {
			resp.AddError("service_account", fmt.Sprintf("invalid service account name %q", s.ServiceAccount), msg)
		}
	}
}

// validateLabelMap checks label keys and values, as node_selector and
// labels both hold them.
func validateLabelMap(m map[string]string, path string, resp *pluginapi.ConfigureResponse) {
	for _, key := range slices.Sorted(maps.Keys(m)) {
		for _, msg := range validation.IsQualifiedName(key) {
			resp.AddError(path+"."+key, fmt.Sprintf("invalid label key %q", key), msg)
		}
		for _, msg := range validation.IsValidLabelValue(m[key]) {
			resp.AddError(path+"."+key, fmt.Sprintf("invalid label value %q", m[key]), msg)
		}
	}
}

// parseResources parses Kubernetes quantities; a block without requests
// and limits gives the default Kaniko resources.
func parseResources(in rawResources, path string, resp *pluginapi.ConfigureResponse) corev1.ResourceRequirements {
	if len(in.Requests) == 0 && len(in.Limits) == 0 {
		return defaultBuildResources()
	}
	return corev1.ResourceRequirements{
		Requests: parseResourceList(in.Requests, path+".requests", resp),
		Limits:   parseResourceList(in.Limits, path+".limits", resp),
	}
}

func parseResourceList(in map[string]string, path string, resp *pluginapi.ConfigureResponse) corev1.ResourceList {
	if len(in) == 0 {
		return nil
	}
	out := corev1.ResourceList{}
	for _, name := range slices.Sorted(maps.Keys(in)) {
		switch corev1.ResourceName(name) {
		case corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage:
		default:
			resp.AddError(path+"."+name, fmt.Sprintf("unknown resource %q", name), "Use cpu, memory or ephemeral-storage.")
			continue
		}
		q, err := resource.ParseQuantity(strings.TrimSpace(in[name]))
		if err != nil || q.Sign() <= 0 {
			resp.AddError(path+"."+name, fmt.Sprintf("invalid quantity %q", in[name]), `Use a positive Kubernetes quantity such as "500m", "2" or "1Gi".`)
			continue
		}
		out[corev1.ResourceName(name)] = q
	}
	return out
}
