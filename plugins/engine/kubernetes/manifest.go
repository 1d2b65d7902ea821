package main

import (
	"maps"
	"slices"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"

	"github.com/estela-go/estela-go/sdk/engine"
	"github.com/estela-go/estela-go/sdk/errdefs"
)

// jobContainer is the name of the container that runs a spider, as in estela.
const jobContainer = "jobcontainer"

// validateJobName rejects names that cannot name a Job. The limit is 63
// characters, not the 253 of object names, because the Job controller
// copies the name into the job-name label of its pods.
func validateJobName(name string) error {
	if msgs := validation.IsDNS1123Label(name); len(msgs) > 0 {
		return errdefs.Invalid("invalid job name %q: %s", name, strings.Join(msgs, "; "))
	}
	return nil
}

// validateSpec checks what the API server would reject later with a less
// helpful message.
func validateSpec(spec engine.JobSpec) error {
	if err := validateJobName(spec.Name); err != nil {
		return err
	}
	if spec.ArtifactRef == "" {
		return errdefs.Invalid("job %s has no artifact ref: set it to the image built for the deploy", spec.Name)
	}
	if len(spec.Command) == 0 {
		return errdefs.Invalid("job %s has no command", spec.Name)
	}
	if spec.MaxRuntime < 0 {
		return errdefs.Invalid("job %s has a negative max runtime %s", spec.Name, spec.MaxRuntime)
	}
	return validateLabelKeys(spec.Labels)
}

// jobManifest returns the batch/v1 Job that runs spec, built as estela's
// Kubernetes engine builds spider jobs.
func jobManifest(s *settings, spec engine.JobSpec) *batchv1.Job {
	podLabels := kubeLabels(spec.Labels, s.Labels)
	maxRuntime := spec.MaxRuntime
	if maxRuntime == 0 {
		maxRuntime = s.MaxRuntime
	}
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name:        spec.Name,
			Namespace:   s.Namespace,
			Labels:      podLabels,
			Annotations: map[string]string{annotationLabels: encodeLabels(spec.Labels)},
		},
		Spec: batchv1.JobSpec{
			BackoffLimit:            ptr.To(s.BackoffLimit),
			TTLSecondsAfterFinished: ptr.To(s.TTLSeconds),
			ActiveDeadlineSeconds:   deadlineSeconds(maxRuntime),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: maps.Clone(podLabels)},
				Spec:       jobPodSpec(s, spec),
			},
		},
	}
}

func jobPodSpec(s *settings, spec engine.JobSpec) corev1.PodSpec {
	return corev1.PodSpec{
		RestartPolicy:      corev1.RestartPolicyNever,
		ServiceAccountName: s.ServiceAccount,
		NodeSelector:       maps.Clone(s.NodeSelector),
		ImagePullSecrets:   pullSecrets(s.ImagePullSecret),
		SecurityContext: &corev1.PodSecurityContext{
			RunAsNonRoot: ptr.To(true),
			RunAsUser:    ptr.To(s.RunAsUser),
		},
		Containers: []corev1.Container{{
			Name:            jobContainer,
			Image:           spec.ArtifactRef,
			Command:         slices.Clone(spec.Command),
			Env:             envVars(spec.Env),
			Resources:       resources(spec.Resources),
			ImagePullPolicy: s.ImagePullPolicy,
			SecurityContext: restrictedContainer(),
		}},
	}
}

// restrictedContainer drops every capability and privilege escalation.
func restrictedContainer() *corev1.SecurityContext {
	return &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr.To(false),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
	}
}

func pullSecrets(name string) []corev1.LocalObjectReference {
	if name == "" {
		return nil
	}
	return []corev1.LocalObjectReference{{Name: name}}
}

// envVars returns env sorted by name, so the same spec always gives the
// same manifest.
func envVars(env map[string]string) []corev1.EnvVar {
	if len(env) == 0 {
		return nil
	}
	out := make([]corev1.EnvVar, 0, len(env))
	for _, name := range slices.Sorted(maps.Keys(env)) {
		out = append(out, corev1.EnvVar{Name: name, Value: env[name]})
	}
	return out
}

// resources converts the spec's resources, leaving out zero values.
func resources(r engine.Resources) corev1.ResourceRequirements {
	return corev1.ResourceRequirements{
		Requests: resourceList(r.CPURequestMillis, r.MemoryRequestBytes),
		Limits:   resourceList(r.CPULimitMillis, r.MemoryLimitBytes),
	}
}

func resourceList(cpuMillis, memoryBytes int64) corev1.ResourceList {
	out := corev1.ResourceList{}
	if cpuMillis > 0 {
		out[corev1.ResourceCPU] = *resource.NewMilliQuantity(cpuMillis, resource.DecimalSI)
	}
	if memoryBytes > 0 {
		out[corev1.ResourceMemory] = *resource.NewQuantity(memoryBytes, resource.BinarySI)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// deadlineSeconds rounds d up to whole seconds, or returns nil for no limit.
func deadlineSeconds(d time.Duration) *int64 {
	if d <= 0 {
		return nil
	}
	seconds := int64((d + time.Second - 1) / time.Second)
	return &seconds
}
