package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/estela-go/estela-go/sdk/errdefs"
)

// connect returns a clientset for the cluster the settings choose. It reads
// files but does not contact the API server.
func connect(s *settings) (kubernetes.Interface, error) {
	config, err := restConfig(s)
	if err != nil {
		return nil, err
	}
	config.UserAgent = "estela-engine-kubernetes/" + version
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		return nil, fmt.Errorf("create Kubernetes client: %w", err)
	}
	return client, nil
}

// restConfig uses the in-cluster configuration when neither kubeconfig nor
// context is set and the plugin runs in a pod, and a kubeconfig file
// otherwise: the kubeconfig setting, else $KUBECONFIG, else ~/.kube/config.
func restConfig(s *settings) (*rest.Config, error) {
	if s.Kubeconfig == "" && s.Context == "" {
		config, err := rest.InClusterConfig()
		if err == nil {
			return config, nil
		}
		if !errors.Is(err, rest.ErrNotInCluster) {
			return nil, fmt.Errorf("load in-cluster configuration: %w", err)
		}
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = s.Kubeconfig
	overrides := &clientcmd.ConfigOverrides{CurrentContext: s.Context}
	loader := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
	if err := checkContext(loader, s.Context); err != nil {
		return nil, err
	}
	config, err := loader.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig: %w", err)
	}
	return config, nil
}

// errUnknownContext means the context setting names no context of the
// kubeconfig.
var errUnknownContext = errors.New("unknown context")

func checkContext(loader clientcmd.ClientConfig, name string) error {
	if name == "" {
		return nil
	}
	raw, err := loader.RawConfig()
	if err != nil {
		return fmt.Errorf("load kubeconfig: %w", err)
	}
	if _, ok := raw.Contexts[name]; !ok {
		return fmt.Errorf("%w %q: the kubeconfig has %v", errUnknownContext, name, slices.Sorted(maps.Keys(raw.Contexts)))
	}
	return nil
}

// apiError converts an error of the Kubernetes API into an errdefs error
// about object, for example "job sj-1-2". Authorization failures count as
// unavailable: the request is valid, and it succeeds once an operator fixes
// the plugin's RBAC role.
func apiError(err error, object string) error {
	var status apierrors.APIStatus
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case apierrors.IsNotFound(err):
		return errdefs.NotFound("%s not found", object)
	case apierrors.IsAlreadyExists(err), apierrors.IsConflict(err):
		return errdefs.Conflict("%s: %s", object, err)
	case apierrors.IsInvalid(err), apierrors.IsBadRequest(err):
		return errdefs.Invalid("%s: %s", object, err)
	case apierrors.IsUnauthorized(err), apierrors.IsForbidden(err):
		return errdefs.Unavailable("%s: %s; check the credentials and RBAC role of the plugin", object, err)
	case errors.As(err, &status), isNetworkError(err):
		return errdefs.Unavailable("%s: Kubernetes API server: %s", object, err)
	default:
		return fmt.Errorf("%s: %w", object, err)
	}
}

func isNetworkError(err error) bool {
	var urlErr *url.Error
	var netErr net.Error
	return errors.As(err, &urlErr) || errors.As(err, &netErr)
}
