package main

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-hclog"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/estela-go/estela-go/sdk/pluginapi"
)

// testNow is the fixed time of test engines.
var testNow = time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)

// quantityEqual compares resource quantities by value, because equal
// quantities may differ in their cached string form.
var quantityEqual = cmp.Comparer(func(a, b resource.Quantity) bool { return a.Cmp(b) == 0 })

// newTestEngine returns an engine configured with config (nil for none)
// on a fake clientset holding objects. The fake gives every created
// object a UID, as the API server does.
func newTestEngine(t *testing.T, config map[string]any, objects ...runtime.Object) (*kubeEngine, *fake.Clientset) {
	t.Helper()
	client := fake.NewClientset(objects...)
	client.PrependReactor("create", "*", assignUID)
	e := newEngine(hclog.NewNullLogger())
	e.connect = func(*settings) (kubernetes.Interface, error) { return client, nil }
	e.now = func() time.Time { return testNow }
	resp, err := e.Configure(t.Context(), &pluginapi.ConfigureRequest{Config: marshal(t, config)})
	if err != nil {
		t.Fatalf("Configure: %v", err)
	}
	if err := resp.Err(); err != nil {
		t.Fatalf("Configure diagnostics: %v", err)
	}
	client.ClearActions()
	return e, client
}

func assignUID(action k8stesting.Action) (bool, runtime.Object, error) {
	create, ok := action.(k8stesting.CreateAction)
	if !ok {
		return false, nil, nil
	}
	if obj, ok := create.GetObject().(metav1.Object); ok && obj.GetUID() == "" {
		obj.SetUID(types.UID("uid-" + obj.GetName()))
	}
	return false, nil, nil
}

func marshal(t *testing.T, v any) []byte {
	t.Helper()
	if v == nil {
		return []byte("{}")
	}
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// actionsOf returns the verbs and resources of the client's actions, such
// as "list jobs", for counting API calls.
func actionsOf(client *fake.Clientset) []string {
	var out []string
	for _, a := range client.Actions() {
		name := a.GetVerb() + " " + a.GetResource().Resource
		if sub := a.GetSubresource(); sub != "" {
			name += "/" + sub
		}
		out = append(out, name)
	}
	return out
}

func at(minutes int) metav1.Time {
	return metav1.NewTime(testNow.Add(time.Duration(minutes) * time.Minute))
}

func resourceListOf(cpu, memory string) corev1.ResourceList {
	return corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(memory)}
}
