package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/kakehi/kakehi/test/harness"
)

// TestDefaultBackendAnswersEveryMethodOnAnyHost runs its own controller for
// its own class, so that its default backend cannot hide the 404s that the
// other tests expect.
func TestDefaultBackendAnswersEveryMethodOnAnyHost(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const class, controller = "kakehi-default", "kakehi.dev/default-backend-test"
	newBackends(t, "defaults", 1, "fallback")
	ing := harness.Ingress("defaults", "fallback", class)
	b := harness.ServiceBackend("fallback", "80")
	ing.Spec.DefaultBackend = &b
	if err := harness.CreateAll(ctx, env.cp.Client, harness.IngressClass(class, controller, false), ing); err != nil {
		t.Fatal(err)
	}
	c, err := harness.StartController(ctx, harness.ControllerOptions{
		Kubeconfig: env.cp.Kubeconfig, PortBase: 8180,
		Args: []string{"--ingress-class", class, "--controller-name", controller},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	eventually(t, 10*time.Second, func() error { _, err := expectFallback(c.HTTPAddr, "GET", "x.test", "/"); return err })
	for _, method := range []string{"GET", "POST", "PUT", "DELETE", "PATCH"} {
		for _, hp := range [][2]string{{"any.test", "/"}, {"Other.Example:81", "/a/b?c=d"}, {"198.18.9.9", "/deep/path/"}} {
			e, err := expectFallback(c.HTTPAddr, method, hp[0], hp[1])
			if err != nil {
				t.Errorf("%s %s%s: %v", method, hp[0], hp[1], err)
				continue
			}
			if e.Method != method || e.Host != hp[0] {
				t.Errorf("%s %s%s: backend saw method %s host %s", method, hp[0], hp[1], e.Method, e.Host)
			}
			if method != "GET" && method != "DELETE" && e.Body != "payload" {
				t.Errorf("%s %s%s: backend saw body %q", method, hp[0], hp[1], e.Body)
			}
		}
	}
}

func expectFallback(addr, method, host, path string) (*harness.Echo, error) {
	body := ""
	if method != "GET" && method != "DELETE" {
		body = "payload"
	}
	r, err := do(addr, method, host, path, body)
	if err != nil {
		return nil, err
	}
	if r.Echo == nil || r.Echo.Service != "fallback" {
		return nil, errStatus(r)
	}
	return r.Echo, nil
}
