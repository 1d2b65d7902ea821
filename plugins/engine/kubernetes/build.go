package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/estela-go/estela-go/sdk/engine"
	"github.com/estela-go/estela-go/sdk/errdefs"
)

// BuildImage starts a build Job named deploy-<project>-<deploy> and returns
// at once; estela-report-deploy in the built image reports the outcome to
// the API. The tokens and the registry login go into Secrets that the Job
// owns, so they never appear in the Job's manifest and are deleted with it.
// A build Job that exists already is left as it is.
func (e *kubeEngine) BuildImage(ctx context.Context, req *engine.BuildImageRequest) (*engine.BuildImageResponse, error) {
	s, client, err := e.current()
	if err != nil {
		return nil, err
	}
	if err := validateBuild(req); err != nil {
		return nil, err
	}
	b := newBuild(s, req)
	resp := &engine.BuildImageResponse{BuildName: b.name, Image: req.Image}
	existing, err := client.BatchV1().Jobs(s.Namespace).Get(ctx, b.name, metav1.GetOptions{})
	if err == nil {
		return resp, b.checkOwn(existing)
	}
	if !apierrors.IsNotFound(err) {
		return nil, apiError(err, "build job "+b.name)
	}
	job, err := b.start(ctx, client)
	if err != nil {
		return nil, err
	}
	if job == nil {
		return resp, nil // a concurrent call started the same build
	}
	if err := b.setOwner(ctx, client, job); err != nil {
		// The build runs all the same; only the cleanup of its Secrets is lost.
		e.logger.Warn("secrets of the build will outlive its Job: delete them by hand", "build", b.name, "error", err)
	}
	e.logger.Info("image build started", "build", b.name, "image", req.Image)
	return resp, nil
}

func validateBuild(req *engine.BuildImageRequest) error {
	switch {
	case req.DeployID <= 0:
		return errdefs.Invalid("invalid deploy id %d: must be greater than 0", req.DeployID)
	case req.Image == "":
		return errdefs.Invalid("missing image to build for deploy %d", req.DeployID)
	case req.ArchiveToken == "" || req.ReportToken == "":
		return errdefs.Invalid("build of deploy %d needs both an archive token and a report token", req.DeployID)
	case req.Timeout < 0:
		return errdefs.Invalid("invalid build timeout %s", req.Timeout)
	}
	for name, value := range map[string]string{"archive URL": req.ArchiveURL, "API host": req.APIHost} {
		if u, err := url.Parse(value); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return errdefs.Invalid("invalid %s %q: use an http:// or https:// URL the cluster can reach", name, value)
		}
	}
	return validateJobName(buildName(req))
}

func buildName(req *engine.BuildImageRequest) string {
	return fmt.Sprintf("deploy-%s-%d", req.ProjectID, req.DeployID)
}

// build holds the objects of one image build.
type build struct {
	name      string
	namespace string
	labels    map[string]string
	job       *batchv1.Job
	tokens    *corev1.Secret
	// registry is nil when the registry needs no login.
	registry *corev1.Secret
}

func newBuild(s *settings, req *engine.BuildImageRequest) *build {
	jobLabels := map[string]string{
		labelManagedBy:   managedBy,
		"estela/project": req.ProjectID,
		"estela/deploy":  strconv.FormatInt(req.DeployID, 10),
	}
	b := &build{name: buildName(req), namespace: s.Namespace, labels: kubeLabels(jobLabels, s.Labels)}
	b.tokens = b.tokenSecret(req)
	if req.Registry.Server != "" {
		b.registry = b.registrySecret(req.Registry)
	}
	b.job = buildManifest(s, req, b, jobLabels)
	return b
}

func (b *build) secrets() []*corev1.Secret {
	if b.registry == nil {
		return []*corev1.Secret{b.tokens}
	}
	return []*corev1.Secret{b.tokens, b.registry}
}

func (b *build) checkOwn(job *batchv1.Job) error {
	if job.Labels[labelManagedBy] != managedBy {
		return errdefs.Conflict("a Job named %s exists in namespace %s but was not created by estela-go", b.name, b.namespace)
	}
	return nil
}

// start creates the Secrets, replacing those an earlier failed attempt
// left, then the Job. It returns the created Job, or nil when a Job of
// that name appeared meanwhile.
func (b *build) start(ctx context.Context, client kubernetes.Interface) (*batchv1.Job, error) {
	for _, secret := range b.secrets() {
		if err := applySecret(ctx, client, secret); err != nil {
			return nil, err
		}
	}
	created, err := client.BatchV1().Jobs(b.namespace).Create(ctx, b.job, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil, nil
	}
	if err != nil {
		b.deleteSecrets(client)
		return nil, apiError(err, "create build job "+b.name)
	}
	return created, nil
}

func applySecret(ctx context.Context, client kubernetes.Interface, secret *corev1.Secret) error {
	secrets := client.CoreV1().Secrets(secret.Namespace)
	_, err := secrets.Create(ctx, secret, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		_, err = secrets.Update(ctx, secret, metav1.UpdateOptions{})
	}
	return apiError(err, "create secret "+secret.Name)
}

// deleteSecrets removes the Secrets of a build whose Job was not created.
// It uses a fresh context because the request's may be what failed.
func (b *build) deleteSecrets(client kubernetes.Interface) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, secret := range b.secrets() {
		_ = client.CoreV1().Secrets(b.namespace).Delete(ctx, secret.Name, metav1.DeleteOptions{})
	}
}

// setOwner adds an owner reference to the Job on each Secret, so that the
// garbage collector deletes them with the Job.
func (b *build) setOwner(ctx context.Context, client kubernetes.Interface, job *batchv1.Job) error {
	owner := metav1.OwnerReference{APIVersion: "batch/v1", Kind: "Job", Name: job.Name, UID: job.UID}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"ownerReferences": []metav1.OwnerReference{owner}}})
	if err != nil {
		return fmt.Errorf("encode owner reference: %w", err)
	}
	var errs []error
	for _, secret := range b.secrets() {
		_, err := client.CoreV1().Secrets(b.namespace).Patch(ctx, secret.Name, types.MergePatchType, patch, metav1.PatchOptions{})
		if err != nil {
			errs = append(errs, apiError(err, "set the owner of secret "+secret.Name))
		}
	}
	return errors.Join(errs...)
}
