package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	ctrlclient "sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kakehi/kakehi/test/harness"
)

// httpc talks to the proxy over keep-alive connections.
var httpc = &http.Client{
	Timeout:   5 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true},
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
}

// h2c talks HTTP/2 with prior knowledge to the proxy's plain port.
var h2c = func() *http.Client {
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Protocols: &protos}}
}()

// result is one proxied response.
type result struct {
	Status int
	Header http.Header
	Body   string
	Echo   *harness.Echo // set when a backend pod answered
}

// do sends method to the proxy at addr with the given Host header and path.
func do(addr, method, host, path, body string) (*result, error) {
	req, err := http.NewRequest(method, "http://"+addr+path, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Host = host
	return roundTrip(httpc, req)
}

// roundTrip sends req with c and reads the response and its echo.
func roundTrip(c *http.Client, req *http.Request) (*result, error) {
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	r := &result{Status: resp.StatusCode, Header: resp.Header, Body: string(b)}
	if resp.Header.Get("X-Pod") != "" {
		var e harness.Echo
		if err := json.Unmarshal(b, &e); err != nil {
			return nil, fmt.Errorf("decoding echo: %w: %q", err, b)
		}
		r.Echo = &e
	}
	return r, nil
}

// get sends GET through the shared controller.
func get(host, path string) (*result, error) { return do(env.ctrl.HTTPAddr, "GET", host, path, "") }

// eventually waits until f returns nil (see harness.Eventually).
func eventually(t testing.TB, within time.Duration, f func() error) {
	t.Helper()
	harness.Eventually(t, within, f)
}

// routesTo returns nil when GET host+path is answered by service svc (and,
// when pod is not "", by that pod).
func routesTo(host, path, svc, pod string) func() error {
	return func() error {
		r, err := get(host, path)
		if err != nil {
			return err
		}
		if r.Echo == nil {
			return fmt.Errorf("GET %s%s: status %d, body %q, want service %s", host, path, r.Status, r.Body, svc)
		}
		if r.Echo.Service != svc || (pod != "" && r.Echo.Pod != pod) {
			return fmt.Errorf("GET %s%s: answered by %s/%s, want %s/%s", host, path, r.Echo.Service, r.Echo.Pod, svc, pod)
		}
		return nil
	}
}

// answers returns nil when GET host+path gets status code from the proxy
// itself (no pod answered).
func answers(host, path string, code int) func() error {
	return func() error {
		r, err := get(host, path)
		if err != nil {
			return err
		}
		if r.Status != code || r.Echo != nil {
			pod := ""
			if r.Echo != nil {
				pod = r.Echo.Service + "/" + r.Echo.Pod
			}
			return fmt.Errorf("GET %s%s: status %d (pod %q), want %d from the proxy", host, path, r.Status, pod, code)
		}
		return nil
	}
}

// backendSet is a namespace with services whose pods run as real servers.
type backendSet struct {
	t    testing.TB
	ns   string
	pods map[string][]*harness.Pod
}

var serviceIndex int

// newBackends creates namespace ns and, for each name, a Service with n
// ready pods and their EndpointSlice. Every service gets its own /24 of
// PodRange.
func newBackends(t testing.TB, ns string, n int, names ...string) *backendSet {
	t.Helper()
	return newBackendsOpt(t, ns, n, true, names...)
}

// newBackendsOpt is newBackends, creating the namespace only when
// createNS is set.
func newBackendsOpt(t testing.TB, ns string, n int, createNS bool, names ...string) *backendSet {
	t.Helper()
	ctx := context.Background()
	bs := &backendSet{t: t, ns: ns, pods: map[string][]*harness.Pod{}}
	if createNS {
		if err := harness.CreateAll(ctx, env.cp.Client, harness.Namespace(ns)); err != nil {
			t.Fatal(err)
		}
	}
	for _, svc := range names {
		s := serviceIndex
		serviceIndex++
		for i := 0; i < n; i++ {
			p, err := harness.StartPod(svc, fmt.Sprintf("%s-%d", svc, i), harness.PodIP(s, i), 8080)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(p.Stop)
			bs.pods[svc] = append(bs.pods[svc], p)
		}
		objs := []ctrlclient.Object{harness.Service(ns, svc), harness.EndpointSlice(ns, svc+"-1", svc, bs.pods[svc]...)}
		if err := harness.CreateAll(ctx, env.cp.Client, objs...); err != nil {
			t.Fatal(err)
		}
	}
	return bs
}

// errStatus describes a response that was not the expected echo.
func errStatus(r *result) error {
	return fmt.Errorf("status %d, body %q", r.Status, r.Body)
}
