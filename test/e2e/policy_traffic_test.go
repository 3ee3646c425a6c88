package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/kakehi/kakehi/pkg/apis/v1alpha1"
	"github.com/kakehi/kakehi/test/harness"
)

// policyRoutes creates, in namespace ns (created here with service svc of
// n pods), one Ingress per host to svc and, for each spec, a RoutePolicy
// on the Ingress of the same index; a nil spec leaves its host without a
// policy. It waits until every policy is Accepted.
func policyRoutes(t *testing.T, ns, svc string, n int, hosts []string, specs []*v1alpha1.RoutePolicySpec) *backendSet {
	t.Helper()
	ctx := context.Background()
	bs := newBackends(t, ns, n, svc)
	for i, host := range hosts {
		name := fmt.Sprintf("ing%d", i)
		ing := harness.Ingress(ns, name, className, harness.Rule(host, harness.Path(prefix, "/", svc)))
		if err := harness.CreateAll(ctx, env.cp.Client, ing); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, routesTo(host, "/", svc, "")) // live before any assertion on it
		if specs[i] == nil {
			continue
		}
		if err := harness.CreateAll(ctx, env.cp.Client, routePolicy(ns, "pol"+name, *specs[i], name)); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, conditionIs(ns, "pol"+name, v1alpha1.ConditionAccepted, metav1.ConditionTrue, v1alpha1.ReasonAccepted))
	}
	return bs
}

// dur is a *v1alpha1.Duration.
func dur(s string) *v1alpha1.Duration { d := v1alpha1.Duration(s); return &d }

// send sends method host+path with header kv pairs through the shared
// controller.
func send(c *http.Client, method, host, path, body string, kv ...string) (*result, error) {
	req, err := http.NewRequest(method, "http://"+env.ctrl.HTTPAddr+path, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Host = host
	for i := 0; i+1 < len(kv); i += 2 {
		req.Header.Add(kv[i], kv[i+1])
	}
	return roundTrip(c, req)
}

// podOf returns the pod that answered r, or an error describing r.
func podOf(r *result, err error) (string, error) {
	if err != nil {
		return "", err
	}
	if r.Echo == nil || r.Status != 200 {
		return "", errStatus(r)
	}
	return r.Echo.Pod, nil
}

// TestPolicyTrafficRequestTimeout: a pod slower than the policy's request
// timeout makes the proxy answer 504, while the same request on a host
// without the policy waits for the pod.
func TestPolicyTrafficRequestTimeout(t *testing.T) {
	policyRoutes(t, "pt-timeout", "slow", 1, []string{"timeout.pt.test", "notimeout.pt.test"},
		[]*v1alpha1.RoutePolicySpec{{Timeouts: &v1alpha1.Timeouts{Request: dur("300ms")}}, nil})
	eventually(t, 20*time.Second, answers("timeout.pt.test", "/?sleep=1500ms", 504))
	start := time.Now()
	if err := answers("timeout.pt.test", "/?sleep=3s", 504)(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("504 after %v, want about 300ms", d)
	}
	if _, err := podOf(get("notimeout.pt.test", "/?sleep=1500ms")); err != nil {
		t.Errorf("without the policy: %v", err)
	}
}

// TestPolicyTrafficRetryOnStatusLandsOnAnotherPod: one pod answers 503 to
// marked requests; retryOn status-503 makes the other pod answer them,
// while without the policy the 503s reach the client.
func TestPolicyTrafficRetryOnStatusLandsOnAnotherPod(t *testing.T) {
	bs := policyRoutes(t, "pt-retry", "flaky", 2, []string{"retry.pt.test", "noretry.pt.test"},
		[]*v1alpha1.RoutePolicySpec{{Retries: &v1alpha1.Retries{Attempts: 2, On: []v1alpha1.RetryOn{v1alpha1.RetryOnStatus503}}}, nil})
	bad, good := bs.pods["flaky"][0].Name, bs.pods["flaky"][1].Name
	path := "/?status=503&statuspod=" + bad
	eventually(t, 20*time.Second, func() error {
		for i := 0; i < 8; i++ {
			pod, err := podOf(get("retry.pt.test", path))
			if err != nil {
				return err
			}
			if pod != good {
				return fmt.Errorf("answered by %s, want %s", pod, good)
			}
		}
		return nil
	})
	got503 := 0
	for i := 0; i < 8; i++ {
		r, err := get("noretry.pt.test", path)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status == 503 && r.Echo != nil && r.Echo.Pod == bad {
			got503++
		}
	}
	if got503 == 0 {
		t.Errorf("without the policy no 503 from %s reached the client", bad)
	}
}

// TestPolicyTrafficConsistentHashKeepsAKeyOnOnePod: requests with one
// X-User value reach one pod; different values spread over the pods.
func TestPolicyTrafficConsistentHashKeepsAKeyOnOnePod(t *testing.T) {
	policyRoutes(t, "pt-hash", "hashed", 3, []string{"hash.pt.test"},
		[]*v1alpha1.RoutePolicySpec{{LoadBalancing: &v1alpha1.LoadBalancing{
			Policy: v1alpha1.ConsistentHash, Hash: &v1alpha1.HashSource{Header: ptr.To("X-User")}}}})
	keyPod := func(key string) (string, error) {
		first := ""
		for i := 0; i < 10; i++ {
			pod, err := podOf(send(httpc, "GET", "hash.pt.test", "/", "", "X-User", key))
			if err != nil {
				return "", err
			}
			if first != "" && pod != first {
				return "", fmt.Errorf("key %s reached %s and %s", key, first, pod)
			}
			first = pod
		}
		return first, nil
	}
	eventually(t, 20*time.Second, func() error { _, err := keyPod("alice"); return err })
	spread := map[string]bool{}
	for k := 0; k < 12; k++ {
		pod, err := keyPod(fmt.Sprintf("user-%d", k))
		if err != nil {
			t.Fatal(err)
		}
		spread[pod] = true
	}
	if len(spread) < 2 {
		t.Errorf("12 keys all reached %v, want them spread", spread)
	}
}

// TestPolicyTrafficAffinityCookieSticks: the first response sets the
// affinity cookie; requests that carry it reach the same pod.
func TestPolicyTrafficAffinityCookieSticks(t *testing.T) {
	bs := policyRoutes(t, "pt-sticky", "sticky", 3, []string{"sticky.pt.test"},
		[]*v1alpha1.RoutePolicySpec{{SessionAffinity: &v1alpha1.SessionAffinity{
			Cookie: v1alpha1.AffinityCookie{Name: "kk-session", TTL: dur("1h")}}}})
	var cookie, pinned string
	eventually(t, 20*time.Second, func() error {
		r, err := get("sticky.pt.test", "/")
		if pinned, err = podOf(r, err); err != nil {
			return err
		}
		sc := r.Header.Get("Set-Cookie")
		if !strings.HasPrefix(sc, "kk-session=") || !strings.HasSuffix(sc, "; Path=/; HttpOnly; Max-Age=3600") {
			return fmt.Errorf("Set-Cookie %q", sc)
		}
		cookie, _, _ = strings.Cut(sc, ";")
		return nil
	})
	for _, p := range bs.pods["sticky"] {
		if strings.Contains(cookie, p.IP) {
			t.Fatalf("cookie %q reveals pod address %s", cookie, p.IP)
		}
	}
	for i := 0; i < 15; i++ {
		r, err := send(httpc, "GET", "sticky.pt.test", "/", "", "Cookie", cookie)
		pod, err := podOf(r, err)
		if err != nil {
			t.Fatal(err)
		}
		if pod != pinned || r.Header.Get("Set-Cookie") != "" {
			t.Fatalf("request %d with %s: pod %s (want %s), Set-Cookie %q", i, cookie, pod, pinned, r.Header.Get("Set-Cookie"))
		}
	}
}

// TestPolicyTrafficMaxRequestBody: a body over the policy's limit is
// answered 413, one at the limit reaches the pod, chunked ones too.
func TestPolicyTrafficMaxRequestBody(t *testing.T) {
	policyRoutes(t, "pt-body", "body", 1, []string{"body.pt.test"},
		[]*v1alpha1.RoutePolicySpec{{MaxRequestBodyBytes: ptr.To(int64(1000))}})
	eventually(t, 20*time.Second, func() error {
		r, err := do(env.ctrl.HTTPAddr, "POST", "body.pt.test", "/", strings.Repeat("x", 1001))
		if err != nil {
			return err
		}
		if r.Status != 413 || r.Echo != nil {
			return errStatus(r)
		}
		return nil
	})
	if _, err := podOf(do(env.ctrl.HTTPAddr, "POST", "body.pt.test", "/", strings.Repeat("x", 1000))); err != nil {
		t.Errorf("a body at the limit: %v", err)
	}
	chunked := func(n int) (*result, error) {
		req, err := http.NewRequest("POST", "http://"+env.ctrl.HTTPAddr+"/", struct{ *strings.Reader }{strings.NewReader(strings.Repeat("y", n))})
		if err != nil {
			return nil, err
		}
		req.Host = "body.pt.test"
		return roundTrip(&http.Client{Timeout: 5 * time.Second}, req)
	}
	if r, err := chunked(5000); err != nil || r.Status != 413 {
		t.Errorf("chunked body over the limit: %+v %v, want 413", r, err)
	}
	if _, err := podOf(chunked(900)); err != nil {
		t.Errorf("chunked body under the limit: %v", err)
	}
}

// TestPolicyTrafficLeastRequestAvoidsABusyPod: slow requests pinned to one
// pod (by a hash on another host of the same Service) keep it busy; the
// LeastRequest host sends its requests to the other pod.
func TestPolicyTrafficLeastRequestAvoidsABusyPod(t *testing.T) {
	bs := policyRoutes(t, "pt-least", "least", 2, []string{"pin.pt.test", "least.pt.test"},
		[]*v1alpha1.RoutePolicySpec{
			{LoadBalancing: &v1alpha1.LoadBalancing{Policy: v1alpha1.ConsistentHash, Hash: &v1alpha1.HashSource{Header: ptr.To("X-Key")}}},
			// The affinity cookie only shows when the policy is live.
			{LoadBalancing: &v1alpha1.LoadBalancing{Policy: v1alpha1.LeastRequest},
				SessionAffinity: &v1alpha1.SessionAffinity{Cookie: v1alpha1.AffinityCookie{Name: "lr"}}},
		})
	var busy string
	eventually(t, 20*time.Second, func() error {
		for i := 0; i < 4; i++ {
			pod, err := podOf(send(httpc, "GET", "pin.pt.test", "/", "", "X-Key", "slow"))
			if err != nil || (busy != "" && pod != busy) {
				busy = ""
				return fmt.Errorf("pin host not hashing yet: %s %v", pod, err)
			}
			busy = pod
		}
		r, err := get("least.pt.test", "/")
		if err != nil || r.Header.Get("Set-Cookie") == "" {
			return fmt.Errorf("least-request policy not live yet: %v", err)
		}
		return nil
	})
	var busyPod *harness.Pod
	for _, p := range bs.pods["least"] {
		if p.Name == busy {
			busyPod = p
		}
	}
	before := busyPod.Hits()
	slowc := &http.Client{Timeout: 20 * time.Second}
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = send(slowc, "GET", "pin.pt.test", "/?sleep=4s", "", "X-Key", "slow")
		}()
	}
	defer wg.Wait()
	eventually(t, 5*time.Second, func() error {
		if n := busyPod.Hits() - before; n < 4 {
			return fmt.Errorf("%d slow requests at %s", n, busy)
		}
		return nil
	})
	for i := 0; i < 10; i++ {
		pod, err := podOf(get("least.pt.test", "/"))
		if err != nil {
			t.Fatal(err)
		}
		if pod == busy {
			t.Fatalf("request %d went to %s, busy with 4 slow requests", i, busy)
		}
	}
}
