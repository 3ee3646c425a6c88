package chart

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// wantArgs fails unless the controller container has every arg.
func wantArgs(t *testing.T, d *appsv1.Deployment, args ...string) {
	t.Helper()
	have := d.Spec.Template.Spec.Containers[0].Args
	for _, a := range args {
		if !slices.Contains(have, a) {
			t.Errorf("controller args lack %q; have %q", a, have)
		}
	}
}

// proxyService returns the rendered Service that exposes the proxy (the one
// with an "http" port).
func proxyService(t *testing.T, r *Rendered) *corev1.Service {
	t.Helper()
	for _, u := range r.OfKind("Service") {
		s := into[corev1.Service](t, u)
		for _, p := range s.Spec.Ports {
			if p.Name == "http" {
				return s
			}
		}
	}
	t.Fatalf("no proxy Service in %v", r.Kinds())
	return nil
}

// labelsMatch reports whether every selector label is in labels, and the
// selector is not empty.
func labelsMatch(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func nestedStringMap(obj map[string]any, path ...string) map[string]string {
	m, _, _ := unstructured.NestedStringMap(obj, path...)
	return m
}

func itoa(n int32) string { return strconv.Itoa(int(n)) }

var (
	nsOnce sync.Once
	nsErr  error
)

// testNamespaces are created once: the release namespace (Pod Security
// "restricted" enforced and warned), a watched application namespace, a
// namespace holding the default TLS Secret, and an unrelated one.
var testNamespaces = []string{releaseNS, "apps", "certs", "other"}

// ensureNamespaces creates testNamespaces once per test binary.
func ensureNamespaces(t *testing.T) {
	t.Helper()
	nsOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, name := range testNamespaces {
			ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
				"pod-security.kubernetes.io/enforce": "restricted",
				"pod-security.kubernetes.io/warn":    "restricted",
			}}}
			if e := env.cp.Client.Create(ctx, ns); e != nil && !apierrors.IsAlreadyExists(e) {
				nsErr = e
				return
			}
		}
	})
	if nsErr != nil {
		t.Fatalf("creating namespaces: %v", nsErr)
	}
}
