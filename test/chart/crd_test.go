package chart

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kakehi/kakehi/pkg/apis/v1alpha1"
)

// policyClient returns an admin client whose scheme knows RoutePolicy
// through v1alpha1.AddToScheme.
func policyClient(t *testing.T) client.Client {
	t.Helper()
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(env.cp.Config, client.Options{Scheme: s})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var policySeq int

// newPolicy returns a RoutePolicy in namespace apps targeting Ingress "web",
// changed by mutate.
func newPolicy(mutate func(*v1alpha1.RoutePolicySpec)) *v1alpha1.RoutePolicy {
	policySeq++
	p := &v1alpha1.RoutePolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: fmt.Sprintf("p%d", policySeq)},
		Spec: v1alpha1.RoutePolicySpec{
			TargetRefs: []v1alpha1.LocalPolicyTargetReference{{Group: "networking.k8s.io", Kind: "Ingress", Name: "web"}},
		},
	}
	if mutate != nil {
		mutate(&p.Spec)
	}
	return p
}

func dur(s string) *v1alpha1.Duration { d := v1alpha1.Duration(s); return &d }

func ref(kind, name string) v1alpha1.LocalPolicyTargetReference {
	return v1alpha1.LocalPolicyTargetReference{Group: "networking.k8s.io", Kind: kind, Name: name}
}

// TestRoutePolicyValidation sends RoutePolicies to the API server with the
// generated CRD installed: good ones are stored, bad ones are refused by the
// API server itself (OpenAPI and CEL), with a message naming the problem.
func TestRoutePolicyValidation(t *testing.T) {
	ensureNamespaces(t)
	c := policyClient(t)
	hash := func(policy v1alpha1.LoadBalancingPolicy, h *v1alpha1.HashSource) func(*v1alpha1.RoutePolicySpec) {
		return func(s *v1alpha1.RoutePolicySpec) { s.LoadBalancing = &v1alpha1.LoadBalancing{Policy: policy, Hash: h} }
	}
	cases := []struct {
		name   string
		mutate func(*v1alpha1.RoutePolicySpec)
		want   string // "" = accepted; else a substring of the refusal
	}{
		{"minimal", nil, ""},
		{"every field", func(s *v1alpha1.RoutePolicySpec) {
			s.Timeouts = &v1alpha1.Timeouts{Connect: dur("2s"), Request: dur("1m30s"), Idle: dur("250ms")}
			s.Retries = &v1alpha1.Retries{Attempts: 3, On: []v1alpha1.RetryOn{v1alpha1.RetryOnConnectFailure, v1alpha1.RetryOnStatus503}}
			s.LoadBalancing = &v1alpha1.LoadBalancing{Policy: v1alpha1.ConsistentHash, Hash: &v1alpha1.HashSource{Header: ptr.To("X-User-Id")}}
			s.SessionAffinity = &v1alpha1.SessionAffinity{Cookie: v1alpha1.AffinityCookie{Name: "kakehi-affinity", TTL: dur("1h")}}
			s.MaxRequestBodyBytes = ptr.To[int64](1 << 20)
			s.BackendProtocol = v1alpha1.BackendH2C
		}, ""},
		{"hash on cookie", hash(v1alpha1.ConsistentHash, &v1alpha1.HashSource{Cookie: ptr.To("session")}), ""},
		{"hash on client address", hash(v1alpha1.ConsistentHash, &v1alpha1.HashSource{ClientAddress: ptr.To(true)}), ""},
		{"least request", hash(v1alpha1.LeastRequest, nil), ""},
		{"no body limit", func(s *v1alpha1.RoutePolicySpec) { s.MaxRequestBodyBytes = ptr.To[int64](0) }, ""},
		{"sixteen targets", func(s *v1alpha1.RoutePolicySpec) {
			s.TargetRefs = nil
			for i := range 16 {
				s.TargetRefs = append(s.TargetRefs, ref("Ingress", fmt.Sprintf("web-%d", i)))
			}
		}, ""},

		{"bad duration", func(s *v1alpha1.RoutePolicySpec) { s.Timeouts = &v1alpha1.Timeouts{Connect: dur("5 seconds")} }, "spec.timeouts.connect"},
		{"fractional duration", func(s *v1alpha1.RoutePolicySpec) { s.Timeouts = &v1alpha1.Timeouts{Request: dur("1.5s")} }, "spec.timeouts.request"},
		{"zero duration", func(s *v1alpha1.RoutePolicySpec) { s.Timeouts = &v1alpha1.Timeouts{Idle: dur("0s")} }, "must be greater than zero"},
		{"bad cookie ttl", func(s *v1alpha1.RoutePolicySpec) {
			s.SessionAffinity = &v1alpha1.SessionAffinity{Cookie: v1alpha1.AffinityCookie{Name: "a", TTL: dur("1d")}}
		}, "spec.sessionAffinity.cookie.ttl"},
		{"attempts 0", func(s *v1alpha1.RoutePolicySpec) { s.Retries = &v1alpha1.Retries{Attempts: 0} }, "spec.retries.attempts"},
		{"attempts 11", func(s *v1alpha1.RoutePolicySpec) { s.Retries = &v1alpha1.Retries{Attempts: 11} }, "spec.retries.attempts"},
		{"unknown retry condition", func(s *v1alpha1.RoutePolicySpec) {
			s.Retries = &v1alpha1.Retries{Attempts: 2, On: []v1alpha1.RetryOn{"status-500"}}
		}, "Unsupported value: \"status-500\""},
		{"repeated retry condition", func(s *v1alpha1.RoutePolicySpec) {
			s.Retries = &v1alpha1.Retries{Attempts: 2, On: []v1alpha1.RetryOn{"status-503", "status-503"}}
		}, "Duplicate value"},
		{"unknown lb policy", hash("Random", nil), "Unsupported value: \"Random\""},
		{"hash missing for ConsistentHash", hash(v1alpha1.ConsistentHash, nil), "hash is required when policy is ConsistentHash"},
		{"hash with RoundRobin", hash(v1alpha1.RoundRobin, &v1alpha1.HashSource{Header: ptr.To("X-User")}), "not allowed otherwise"},
		{"two hash sources", hash(v1alpha1.ConsistentHash, &v1alpha1.HashSource{Header: ptr.To("X-User"), Cookie: ptr.To("s")}), "exactly one of header, cookie or clientAddress"},
		{"three hash sources", hash(v1alpha1.ConsistentHash, &v1alpha1.HashSource{Header: ptr.To("X-User"), Cookie: ptr.To("s"), ClientAddress: ptr.To(true)}), "exactly one of header, cookie or clientAddress"},
		{"empty hash", hash(v1alpha1.ConsistentHash, &v1alpha1.HashSource{}), "exactly one of header, cookie or clientAddress"},
		{"client address false", hash(v1alpha1.ConsistentHash, &v1alpha1.HashSource{ClientAddress: ptr.To(false)}), "exactly one of header, cookie or clientAddress"},
		{"bad header name", hash(v1alpha1.ConsistentHash, &v1alpha1.HashSource{Header: ptr.To("X User")}), "spec.loadBalancing.hash.header"},
		{"empty targetRefs", func(s *v1alpha1.RoutePolicySpec) { s.TargetRefs = []v1alpha1.LocalPolicyTargetReference{} }, "spec.targetRefs"},
		{"seventeen targets", func(s *v1alpha1.RoutePolicySpec) {
			s.TargetRefs = nil
			for i := range 17 {
				s.TargetRefs = append(s.TargetRefs, ref("Ingress", fmt.Sprintf("web-%d", i)))
			}
		}, "spec.targetRefs"},
		{"wrong targetRef kind", func(s *v1alpha1.RoutePolicySpec) {
			s.TargetRefs = []v1alpha1.LocalPolicyTargetReference{ref("Service", "web")}
		}, "Unsupported value: \"Service\""},
		{"wrong targetRef group", func(s *v1alpha1.RoutePolicySpec) {
			s.TargetRefs = []v1alpha1.LocalPolicyTargetReference{{Group: "gateway.networking.k8s.io", Kind: "Ingress", Name: "web"}}
		}, "Unsupported value: \"gateway.networking.k8s.io\""},
		{"bad targetRef name", func(s *v1alpha1.RoutePolicySpec) {
			s.TargetRefs = []v1alpha1.LocalPolicyTargetReference{ref("Ingress", "Web_1")}
		}, "spec.targetRefs[0].name"},
		{"duplicate targetRefs", func(s *v1alpha1.RoutePolicySpec) {
			s.TargetRefs = []v1alpha1.LocalPolicyTargetReference{ref("Ingress", "web"), ref("Ingress", "web")}
		}, "Duplicate value"},
		{"negative body limit", func(s *v1alpha1.RoutePolicySpec) { s.MaxRequestBodyBytes = ptr.To[int64](-1) }, "spec.maxRequestBodyBytes"},
		{"unknown backend protocol", func(s *v1alpha1.RoutePolicySpec) { s.BackendProtocol = "HTTP3" }, "Unsupported value: \"HTTP3\""},
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newPolicy(tc.mutate)
			err := c.Create(ctx, p)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v\n%s", err, yamlOf(p.Spec))
			case tc.want == "":
				_ = c.Delete(ctx, p)
			case err == nil:
				_ = c.Delete(ctx, p)
				t.Fatalf("accepted, want a refusal naming %q:\n%s", tc.want, yamlOf(p.Spec))
			case !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tc.want):
				t.Fatalf("want an Invalid error naming %q, got %v", tc.want, err)
			}
		})
	}
}

// TestRoutePolicyDefaultsAndStatus pins the server-side default of
// retries.on and the status subresource: conditions are a map keyed by
// type, written through /status only.
func TestRoutePolicyDefaultsAndStatus(t *testing.T) {
	ensureNamespaces(t)
	c := policyClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p := newPolicy(func(s *v1alpha1.RoutePolicySpec) { s.Retries = &v1alpha1.Retries{Attempts: 2} })
	if err := c.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Delete(ctx, p) }()
	want := []v1alpha1.RetryOn{v1alpha1.RetryOnConnectFailure, v1alpha1.RetryOnRefusedStream}
	if !slices.Equal(p.Spec.Retries.On, want) {
		t.Errorf("retries.retryOn defaulted to %v, want %v", p.Spec.Retries.On, want)
	}

	cond := func(typ string) metav1.Condition {
		return metav1.Condition{Type: typ, Status: metav1.ConditionTrue, Reason: typ, Message: "ok",
			ObservedGeneration: p.Generation, LastTransitionTime: metav1.Now()}
	}
	p.Status = v1alpha1.RoutePolicyStatus{ObservedGeneration: p.Generation,
		Conditions: []metav1.Condition{cond(v1alpha1.ConditionAccepted), cond(v1alpha1.ConditionResolvedRefs)}}
	if err := c.Status().Update(ctx, p); err != nil {
		t.Fatalf("status update: %v", err)
	}
	p.Status.Conditions = append(p.Status.Conditions, cond(v1alpha1.ConditionAccepted))
	if err := c.Status().Update(ctx, p); err == nil || !strings.Contains(err.Error(), "Duplicate value") {
		t.Errorf("two Accepted conditions: want a Duplicate value refusal, got %v", err)
	}

	var got v1alpha1.RoutePolicy
	if err := c.Get(ctx, client.ObjectKeyFromObject(p), &got); err != nil {
		t.Fatal(err)
	}
	got.Status.Conditions = nil
	if err := c.Update(ctx, &got); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, client.ObjectKeyFromObject(p), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Status.Conditions) != 2 {
		t.Errorf("an update of the main resource changed status: %d conditions left, want 2", len(got.Status.Conditions))
	}
}

// TestChartCRDsMatchGenerated fails when deploy/helm/kakehi/crds differs
// from config/crd: run `make chart-crds` (or `make generate`).
func TestChartCRDsMatchGenerated(t *testing.T) {
	read := func(dir string) map[string][]byte {
		t.Helper()
		files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		out := map[string][]byte{}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			out[filepath.Base(f)] = b
		}
		return out
	}
	gen, chartCRDs := read(crdDir), read(filepath.Join(chartDir, "crds"))
	if len(gen) == 0 {
		t.Fatal("config/crd holds no CRD: run make generate")
	}
	for name, b := range gen {
		if cb, ok := chartCRDs[name]; !ok {
			t.Errorf("chart lacks crds/%s: run make chart-crds", name)
		} else if !bytes.Equal(b, cb) {
			t.Errorf("chart crds/%s differs from config/crd/%s: run make chart-crds", name, name)
		}
	}
	for name := range chartCRDs {
		if _, ok := gen[name]; !ok {
			t.Errorf("chart has crds/%s that config/crd does not: run make chart-crds", name)
		}
	}
}
