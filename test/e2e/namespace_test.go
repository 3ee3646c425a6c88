package e2e

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/kakehi/kakehi/test/harness"
)

// TestWatchNamespaceServesOnlyThatNamespace starts a controller scoped to
// an empty namespace: it must still turn ready (an empty table is a table),
// then serve Ingresses of that namespace and ignore the same host elsewhere.
func TestWatchNamespaceServesOnlyThatNamespace(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := harness.CreateAll(ctx, env.cp.Client, harness.Namespace("scoped-a")); err != nil {
		t.Fatal(err)
	}
	c, err := harness.StartController(ctx, harness.ControllerOptions{
		Kubeconfig: env.cp.Kubeconfig, PortBase: 8780, Args: []string{"--watch-namespace", "scoped-a"},
	})
	if err != nil {
		t.Fatalf("controller scoped to an empty namespace never turned ready: %v", err)
	}
	defer c.Stop()
	newBackends(t, "scoped-b", 1, "outside")
	newBackendsIn(t, "scoped-a", "inside")
	if err := harness.CreateAll(ctx, env.cp.Client,
		harness.Ingress("scoped-b", "b", className, harness.Rule("outside.scoped.test", harness.Path(prefix, "/", "outside"))),
		harness.Ingress("scoped-a", "a", className, harness.Rule("inside.scoped.test", harness.Path(prefix, "/", "inside")))); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() error {
		r, err := do(c.HTTPAddr, "GET", "inside.scoped.test", "/", "")
		if err != nil || r.Echo == nil {
			return errOr(err, r)
		}
		return nil
	})
	r, err := do(c.HTTPAddr, "GET", "outside.scoped.test", "/", "")
	if err != nil || r.Status != http.StatusNotFound {
		t.Errorf("an Ingress outside --watch-namespace was served: %v %+v", err, r)
	}
}

// newBackendsIn is newBackends for a namespace that already exists.
func newBackendsIn(t *testing.T, ns string, names ...string) *backendSet {
	t.Helper()
	return newBackendsOpt(t, ns, 1, false, names...)
}

func errOr(err error, r *result) error {
	if err != nil {
		return err
	}
	return errStatus(r)
}
