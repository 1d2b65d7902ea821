package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/estela-go/estela-go/sdk/engine"
)

// Names inside a build pod. The container names are those of estela's
// build pods, which people know from its build logs.
const (
	downloaderContainer = "project-downloader"
	kanikoContainer     = "kaniko-builder"
	reporterContainer   = "spider-status"
	workspaceVolume     = "workspace"
	workspaceDir        = "/workspace"
	registryVolume      = "registry-auth"
	// kanikoDockerDir is where the Kaniko executor reads config.json, as set
	// by DOCKER_CONFIG in its image.
	kanikoDockerDir = "/kaniko/.docker"
	// dockerfilePath is the Dockerfile every deploy must contain, relative to
	// the project root, as estela-cli's "estela init" creates it.
	dockerfilePath = ".estela/Dockerfile-estela"

	secretKeyArchiveToken = "archive-token"
	secretKeyReportToken  = "report-token"
)

// downloadScript downloads the project zip into the workspace and unpacks
// it into /workspace/project. A zip whose only entry is a directory has
// its project root in that directory. The token comes from the environment
// so that it stays out of the manifest.
const downloadScript = `set -eu
cd ` + workspaceDir + `
curl --fail --silent --show-error --location --retry 3 \
  --header "Authorization: Token ${ARCHIVE_TOKEN}" --output project.zip "${ARCHIVE_URL}"
mkdir unpacked
unzip -q project.zip -d unpacked
rm project.zip
root=unpacked
entries=$(ls -A unpacked)
if [ "$(printf '%s\n' "$entries" | wc -l)" -eq 1 ] && [ -d "unpacked/$entries" ] && [ "$entries" != .estela ]; then
  root="unpacked/$entries"
fi
if [ ! -f "$root/` + dockerfilePath + `" ]; then
  echo "the project has no ` + dockerfilePath + `: add one (estela init creates it) and deploy again" >&2
  exit 1
fi
mv "$root" project
`

// tokenSecret holds the archive and report tokens of a build.
func (b *build) tokenSecret(req *engine.BuildImageRequest) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: b.name, Namespace: b.namespace, Labels: maps.Clone(b.labels)},
		Type:       corev1.SecretTypeOpaque,
		Data: map[string][]byte{
			secretKeyArchiveToken: []byte(req.ArchiveToken),
			secretKeyReportToken:  []byte(req.ReportToken),
		},
	}
}

// registrySecret is the docker config.json Kaniko pushes with. The pod also
// uses it as an image pull secret to run the image it built.
func (b *build) registrySecret(auth engine.RegistryAuth) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: b.name + "-registry", Namespace: b.namespace, Labels: maps.Clone(b.labels)},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: dockerConfig(auth)},
	}
}

// dockerConfig returns a docker config.json with one login.
func dockerConfig(auth engine.RegistryAuth) []byte {
	type login struct {
		Username string `json:"username"`
		Password string `json:"password"`
		Auth     string `json:"auth"`
	}
	config := map[string]map[string]login{"auths": {auth.Server: {
		Username: auth.Username,
		Password: auth.Secret,
		Auth:     base64.StdEncoding.EncodeToString([]byte(auth.Username + ":" + auth.Secret)),
	}}}
	raw, _ := json.Marshal(config) // maps of strings always encode
	return raw
}

// buildManifest returns the build Job: the downloader and Kaniko run as
// init containers sharing an emptyDir, then the built image runs
// estela-report-deploy. Only Kaniko runs as root, because it unpacks
// image layers.
func buildManifest(s *settings, req *engine.BuildImageRequest, b *build, jobLabels map[string]string) *batchv1.Job {
	timeout := req.Timeout
	if timeout == 0 {
		timeout = s.Build.Timeout
	}
	pullSecrets := pullSecrets(s.ImagePullSecret)
	var volumes []corev1.Volume
	volumes = append(volumes, corev1.Volume{Name: workspaceVolume, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
	if b.registry != nil {
		pullSecrets = append(pullSecrets, corev1.LocalObjectReference{Name: b.registry.Name})
		volumes = append(volumes, corev1.Volume{Name: registryVolume, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: b.registry.Name,
			Items:      []corev1.KeyToPath{{Key: corev1.DockerConfigJsonKey, Path: "config.json"}},
		}}})
	}
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name:        b.name,
			Namespace:   b.namespace,
			Labels:      b.labels,
			Annotations: map[string]string{annotationLabels: encodeLabels(jobLabels)},
		},
		Spec: batchv1.JobSpec{
			BackoffLimit:            ptr.To[int32](0),
			TTLSecondsAfterFinished: ptr.To(s.TTLSeconds),
			ActiveDeadlineSeconds:   deadlineSeconds(timeout),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: maps.Clone(b.labels)},
				Spec: corev1.PodSpec{
					RestartPolicy:      corev1.RestartPolicyNever,
					ServiceAccountName: s.ServiceAccount,
					NodeSelector:       maps.Clone(s.NodeSelector),
					ImagePullSecrets:   pullSecrets,
					Volumes:            volumes,
					InitContainers:     []corev1.Container{downloaderSpec(s, req, b), kanikoSpec(s, req, b.registry != nil)},
					Containers:         []corev1.Container{reporterSpec(s, req, b)},
				},
			},
		},
	}
}

func downloaderSpec(s *settings, req *engine.BuildImageRequest, b *build) corev1.Container {
	return corev1.Container{
		Name:            downloaderContainer,
		Image:           s.Build.DownloaderImage,
		ImagePullPolicy: corev1.PullIfNotPresent,
		Command:         []string{"sh", "-c", downloadScript},
		Env: []corev1.EnvVar{
			secretEnv("ARCHIVE_TOKEN", b.name, secretKeyArchiveToken),
			{Name: "ARCHIVE_URL", Value: req.ArchiveURL},
		},
		VolumeMounts:    []corev1.VolumeMount{{Name: workspaceVolume, MountPath: workspaceDir}},
		Resources:       helperResources(),
		SecurityContext: nonRootContainer(s.RunAsUser),
	}
}

func kanikoSpec(s *settings, req *engine.BuildImageRequest, withRegistry bool) corev1.Container {
	project := workspaceDir + "/project"
	args := []string{
		"--context=dir://" + project,
		"--dockerfile=" + project + "/" + dockerfilePath,
		"--destination=" + req.Image,
		"--snapshot-mode=redo",
		"--single-snapshot",
		"--skip-unused-stages",
	}
	mounts := []corev1.VolumeMount{{Name: workspaceVolume, MountPath: workspaceDir}}
	if withRegistry {
		mounts = append(mounts, corev1.VolumeMount{Name: registryVolume, MountPath: kanikoDockerDir, ReadOnly: true})
	}
	return corev1.Container{
		Name:            kanikoContainer,
		Image:           s.Build.KanikoImage,
		ImagePullPolicy: corev1.PullIfNotPresent,
		Args:            append(args, s.Build.KanikoArgs...),
		VolumeMounts:    mounts,
		Resources:       *s.Build.Resources.DeepCopy(),
	}
}

// reporterSpec runs estela-report-deploy from the built image. JOB_INFO
// carries only what the reporter reads: the API host and the project.
func reporterSpec(s *settings, req *engine.BuildImageRequest, b *build) corev1.Container {
	jobInfo, _ := json.Marshal(struct {
		APIHost string `json:"api_host"`
		Key     string `json:"key"`
		Spider  string `json:"spider"`
	}{req.APIHost, req.ProjectID, ""}) // a struct of strings always encodes
	return corev1.Container{
		Name:            reporterContainer,
		Image:           req.Image,
		ImagePullPolicy: s.ImagePullPolicy,
		Command:         []string{"estela-report-deploy"},
		Env: []corev1.EnvVar{
			{Name: "JOB_INFO", Value: string(jobInfo)},
			{Name: "KEY", Value: fmt.Sprintf("%s.%d", req.ProjectID, req.DeployID)},
			secretEnv("TOKEN", b.name, secretKeyReportToken),
		},
		Resources:       helperResources(),
		SecurityContext: nonRootContainer(s.RunAsUser),
	}
}

func secretEnv(name, secret, key string) corev1.EnvVar {
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: secret},
		Key:                  key,
	}}}
}

// nonRootContainer is restrictedContainer run as user uid.
func nonRootContainer(uid int64) *corev1.SecurityContext {
	sc := restrictedContainer()
	sc.RunAsNonRoot = ptr.To(true)
	sc.RunAsUser = ptr.To(uid)
	return sc
}

// helperResources are those of estela's downloader and reporter containers.
func helperResources() corev1.ResourceRequirements {
	return corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("256Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("512Mi")},
	}
}
