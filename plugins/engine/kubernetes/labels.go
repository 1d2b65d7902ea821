package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	"strings"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/estela-go/estela-go/sdk/errdefs"
)

// Labels and annotations the plugin reads and writes.
const (
	// labelManagedBy=managedBy marks every Job and pod the plugin creates.
	// ListJobs and WatchJobs select on it, so Jobs of other tools in the
	// namespace never show up as estela jobs.
	labelManagedBy = "app.kubernetes.io/managed-by"
	managedBy      = "estela-go"
	// labelJobName is the label the Job controller puts on its pods.
	labelJobName = "job-name"
	// annotationLabels stores the job's labels exactly as the host sent them,
	// because label values are rewritten to be valid in Kubernetes.
	annotationLabels = "estela-go/labels"
	// annotationStopRequested records when StopJob was called, in RFC 3339.
	annotationStopRequested = "estela-go/stop-requested-at"
)

// reservedLabelKeys are set by Kubernetes on a Job's pods; a job label with
// one of these keys would break the Job's pod selector.
var reservedLabelKeys = []string{"job-name", "controller-uid"}

// validateLabelKeys returns an errdefs.ErrInvalid error for a key that
// Kubernetes rejects or that the Job controller owns.
func validateLabelKeys(in map[string]string) error {
	for key, value := range in {
		if msgs := validation.IsQualifiedName(key); len(msgs) > 0 {
			return errdefs.Invalid("invalid label key %q: %s", key, strings.Join(msgs, "; "))
		}
		if isReservedLabelKey(key) {
			return errdefs.Invalid("label key %q is reserved for the Kubernetes Job controller", key)
		}
		if key == labelManagedBy && value != managedBy {
			return errdefs.Invalid("label %s must be %q, not %q: the plugin sets it on every Job", labelManagedBy, managedBy, value)
		}
	}
	return nil
}

func isReservedLabelKey(key string) bool {
	for _, reserved := range reservedLabelKeys {
		if key == reserved {
			return true
		}
	}
	return strings.HasPrefix(key, "batch.kubernetes.io/")
}

// kubeLabels returns the labels of a Job and its pods: the configured
// labels, then the job's labels with values made valid, then the
// managed-by marker. Later entries win on equal keys.
func kubeLabels(jobLabels, configured map[string]string) map[string]string {
	out := maps.Clone(configured)
	if out == nil {
		out = map[string]string{}
	}
	for key, value := range jobLabels {
		out[key] = labelValue(value)
	}
	out[labelManagedBy] = managedBy
	return out
}

// labelValue returns value unchanged when it is a valid label value, and
// otherwise a valid value made of its allowed characters and a hash of the
// whole value, so that two different values stay different.
func labelValue(value string) string {
	if len(validation.IsValidLabelValue(value)) == 0 {
		return value
	}
	sum := sha256.Sum256([]byte(value))
	suffix := hex.EncodeToString(sum[:4])
	kept := strings.Map(func(r rune) rune {
		if isAlphanumeric(r) || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '_'
	}, value)
	maxKept := validation.LabelValueMaxLength - len(suffix) - 1
	if len(kept) > maxKept {
		kept = kept[:maxKept]
	}
	kept = strings.TrimFunc(kept, func(r rune) bool { return !isAlphanumeric(r) })
	if kept == "" {
		return suffix
	}
	return kept + "-" + suffix
}

func isAlphanumeric(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
}

// selector returns the label selector of the plugin's Jobs and pods whose
// labels contain want.
func selector(want map[string]string) labels.Selector {
	set := labels.Set{labelManagedBy: managedBy}
	for key, value := range want {
		set[key] = labelValue(value)
	}
	return labels.SelectorFromSet(set)
}

// encodeLabels returns the value of annotationLabels.
func encodeLabels(in map[string]string) string {
	if in == nil {
		in = map[string]string{}
	}
	raw, _ := json.Marshal(in) // a map of strings always encodes
	return string(raw)
}

// reportedLabels returns the labels a job was created with: those in
// annotationLabels, or the object's own labels when the annotation is
// missing or unreadable.
func reportedLabels(annotations, objectLabels map[string]string) map[string]string {
	var out map[string]string
	if raw, ok := annotations[annotationLabels]; ok && json.Unmarshal([]byte(raw), &out) == nil {
		return out
	}
	return maps.Clone(objectLabels)
}

// containsLabels reports whether have contains every entry of want.
func containsLabels(have, want map[string]string) bool {
	for key, value := range want {
		if got, ok := have[key]; !ok || got != value {
			return false
		}
	}
	return true
}
