package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kakehi/kakehi/test/harness"
)

// podState is how a pod appears in an EndpointSlice.
type podState struct {
	pod         *harness.Pod
	terminating bool // ready=false, serving=true, terminating=true
}

// setSlice replaces the endpoints of EndpointSlice ns/name.
func setSlice(ns, name string, states ...podState) error {
	ctx := context.Background()
	var es discoveryv1.EndpointSlice
	if err := env.cp.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &es); err != nil {
		return err
	}
	es.Endpoints = es.Endpoints[:0]
	for _, s := range states {
		ep := harness.Endpoint(s.pod, true)
		if s.terminating {
			ep.Conditions = discoveryv1.EndpointConditions{Ready: ptr.To(false), Serving: ptr.To(true), Terminating: ptr.To(true)}
		}
		es.Endpoints = append(es.Endpoints, ep)
	}
	return env.cp.Client.Update(ctx, &es)
}

// quiet returns nil once pod p took no new request while the load finished
// n more requests.
func quiet(t *testing.T, l *loader, p *harness.Pod, n int64) func() error {
	return func() error {
		before := p.Hits()
		l.waitMore(t, n)
		if after := p.Hits(); after != before {
			return fmt.Errorf("pod %s still gets requests (%d → %d)", p.Name, before, after)
		}
		return nil
	}
}

// TestRollingReplacementCausesNoFailedRequest replaces every pod of a
// backend the way a Deployment rollout does, under steady load from two
// clients: a new pod becomes ready, the old one turns terminating (still
// serving, not ready), then leaves the slice and stops. No request may fail.
func TestRollingReplacementCausesNoFailedRequest(t *testing.T) {
	bs := newBackends(t, "rollout", 3, "roll")
	ing := harness.Ingress("rollout", "roll", className, harness.Rule("roll.test", harness.Path(prefix, "/", "roll")))
	if err := harness.CreateAll(context.Background(), env.cp.Client, ing); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, routesTo("roll.test", "/", "roll", ""))
	loads := []*loader{
		startLoad(env.ctrl.HTTPAddr, "roll.test", "roll", 500000, 2*time.Minute),
		startLoad(env.ctrl.HTTPAddr, "roll.test", "roll", 500000, 2*time.Minute),
	}
	old := bs.pods["roll"]
	current := []podState{{pod: old[0]}, {pod: old[1]}, {pod: old[2]}}
	for i, o := range old {
		n, err := harness.StartPod("roll", fmt.Sprintf("roll-v2-%d", i), harness.PodIP(90, i), 8080)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(n.Stop)
		current = append(current, podState{pod: n})
		if err := setSlice("rollout", "roll-1", current...); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, func() error {
			if n.Hits() == 0 {
				return fmt.Errorf("new pod %s not in rotation yet", n.Name)
			}
			return nil
		})
		for j := range current {
			if current[j].pod == o {
				current[j].terminating = true
			}
		}
		if err := setSlice("rollout", "roll-1", current...); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, quiet(t, loads[0], o, 100))
		current = without(current, o)
		if err := setSlice("rollout", "roll-1", current...); err != nil {
			t.Fatal(err)
		}
		loads[0].waitMore(t, 50)
		o.Stop()
		loads[0].waitMore(t, 50)
	}
	var ok, failed int64
	for _, l := range loads {
		o, f := l.finish()
		ok, failed = ok+o, failed+f
		if f > 0 {
			t.Errorf("first failure: %v", l.firstErr.Load())
		}
	}
	t.Logf("rolling replacement of 3 pods: %d requests, %d failed", ok+failed, failed)
	if failed != 0 {
		t.Errorf("%d requests failed during the rollout", failed)
	}
}

func without(states []podState, p *harness.Pod) []podState {
	out := states[:0:0]
	for _, s := range states {
		if s.pod != p {
			out = append(out, s)
		}
	}
	return out
}
