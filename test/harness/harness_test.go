package harness

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"
)

var cp *ControlPlane

func TestMain(m *testing.M) {
	Main(m, "harness", nil, func(c *ControlPlane) (func(int), error) { cp = c; return func(int) {}, nil })
}

// TestPodRangeEndpointsAreAcceptedAndReachable pins the two facts the e2e
// harness stands on: the API server accepts EndpointSlices with 198.18.x.y
// addresses, and a server bound to such an address answers inside the
// namespace.
func TestPodRangeEndpointsAreAcceptedAndReachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := StartPod("svc", "svc-0", PodIP(200, 7), 8080)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	if err := CreateAll(ctx, cp.Client, Namespace("h"), Service("h", "svc"), EndpointSlice("h", "svc-1", "svc", p)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + p.Addr() + "/x")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || p.Hits() != 1 {
		t.Fatalf("status %d hits %d body %s", resp.StatusCode, p.Hits(), body)
	}
}

// TestSetupNetNSRefusesTheHostNamespace checks the guard that keeps the
// harness from changing the host's network.
func TestSetupNetNSRefusesTheHostNamespace(t *testing.T) {
	t.Setenv(envInNetNS, "")
	if err := SetupNetNS(); err == nil {
		t.Fatal("SetupNetNS ran outside a private namespace")
	}
}
