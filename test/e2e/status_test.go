package e2e

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kakehi/kakehi/test/harness"
)

// statusOf returns nil once Ingress ns/name's load-balancer status lists
// exactly want (IPs or hostnames, in order).
func statusOf(ns, name string, want ...string) func() error {
	return func() error {
		var ing networkingv1.Ingress
		if err := env.cp.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &ing); err != nil {
			return err
		}
		var got []string
		for _, a := range ing.Status.LoadBalancer.Ingress {
			got = append(got, a.IP+a.Hostname)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("ingress %s/%s status %v, want %v", ns, name, got, want)
		}
		return nil
	}
}

// TestStatusIsWrittenAndClearedByTheLeader runs two replicas with leader
// election. Both serve the same routes; only the leader writes status (each
// replica publishes its own address here, so the test can tell them
// apart); killing the leader moves status duty to the other within the
// lease; taking an Ingress away from our class clears its status.
func TestStatusIsWrittenAndClearedByTheLeader(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const class, controller = "kakehi-status", "kakehi.dev/status-test"
	newBackends(t, "status", 1, "st")
	ing := harness.Ingress("status", "st", class, harness.Rule("status.test", harness.Path(prefix, "/", "st")))
	if err := harness.CreateAll(ctx, env.cp.Client, harness.IngressClass(class, controller, false), ing); err != nil {
		t.Fatal(err)
	}
	const lease = 3 * time.Second
	replica := func(port int, addr string) *harness.Controller {
		c, err := harness.StartController(ctx, harness.ControllerOptions{
			Kubeconfig: env.cp.Kubeconfig, PortBase: port,
			Args: []string{"--ingress-class", class, "--controller-name", controller, "--leader-elect",
				"--leader-election-namespace", "status", "--leader-election-lease-duration", lease.String(),
				"--publish-address", addr},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Stop)
		return c
	}
	a := replica(8280, "192.0.2.1")
	b := replica(8290, "192.0.2.2")
	for _, c := range []*harness.Controller{a, b} {
		eventually(t, 10*time.Second, func() error {
			r, err := do(c.HTTPAddr, "GET", "status.test", "/", "")
			if err != nil || r.Echo == nil || r.Echo.Service != "st" {
				return fmt.Errorf("replica %s does not route: %v %+v", c.HTTPAddr, err, r)
			}
			return nil
		})
	}
	eventually(t, 20*time.Second, func() error {
		if statusOf("status", "st", "192.0.2.1")() == nil || statusOf("status", "st", "192.0.2.2")() == nil {
			return nil
		}
		return statusOf("status", "st", "192.0.2.1")()
	})
	leader, follower, followerAddr := a, b, "192.0.2.2"
	if statusOf("status", "st", "192.0.2.2")() == nil {
		leader, follower, followerAddr = b, a, "192.0.2.1"
	}
	_ = leader.Signal(syscall.SIGKILL)
	<-leader.Done()
	start := time.Now()
	eventually(t, 4*lease, statusOf("status", "st", followerAddr))
	t.Logf("status moved to the new leader %v after the old one was killed (lease %v)", time.Since(start).Round(time.Millisecond), lease)

	// Losing the class clears the status; the follower's data plane kept serving throughout.
	if err := env.cp.Client.Get(ctx, client.ObjectKeyFromObject(ing), ing); err != nil {
		t.Fatal(err)
	}
	ing.Spec.IngressClassName = ptr.To("someone-else")
	if err := env.cp.Client.Update(ctx, ing); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, statusOf("status", "st"))
	// Each replica rebuilds on its own watch: the follower's table catches
	// up independently of the leader's status write.
	eventually(t, 10*time.Second, func() error {
		r, err := do(follower.HTTPAddr, "GET", "status.test", "/", "")
		if err != nil || r.Status != 404 {
			return fmt.Errorf("after the class change the route must be gone: %v %+v", err, r)
		}
		return nil
	})
}
