// Package chart tests what users install: the RoutePolicy CRD and the Helm
// chart in deploy/helm/kakehi. Every test talks to a real kube-apiserver
// and etcd started inside a private network namespace (see test/harness):
// CRD validation is the API server's own, rendered chart objects are sent
// with server-side dry-run and strict field validation, pod templates are
// judged by Pod Security "restricted", and the chart's RBAC is installed and
// exercised as the controller's ServiceAccount.
package chart

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kakehi/kakehi/test/harness"
)

// env is the control plane shared by the package's tests.
var env struct {
	cp *harness.ControlPlane
}

// Paths of what the tests check, relative to the repository root.
var (
	chartDir  = filepath.Join(harness.RepoRoot(), "deploy", "helm", "kakehi")
	crdDir    = filepath.Join(harness.RepoRoot(), "config", "crd")
	smCRDDir  = filepath.Join(harness.RepoRoot(), "test", "chart", "testdata", "servicemonitor-crd")
	routePGVR = schema.GroupVersionResource{Group: "kakehi.dev", Version: "v1alpha1", Resource: "routepolicies"}
	smGVR     = schema.GroupVersionResource{Group: "monitoring.coreos.com", Version: "v1", Resource: "servicemonitors"}
)

func TestMain(m *testing.M) {
	harness.Main(m, "chart", []string{crdDir, smCRDDir}, func(cp *harness.ControlPlane) (func(int), error) {
		env.cp = cp
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, gvr := range []schema.GroupVersionResource{routePGVR, smGVR} {
			if err := cp.WaitForResource(ctx, gvr); err != nil {
				return nil, err
			}
		}
		return func(int) {}, nil
	})
}
