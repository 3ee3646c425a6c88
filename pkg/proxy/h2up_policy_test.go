package proxy

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kakehi/kakehi/pkg/metrics"
	"github.com/kakehi/kakehi/pkg/route"
)

// namedH2C starts an h2c backend answering its name.
func namedH2C(t *testing.T, name string, status int) *h2cBackend {
	return newH2CBackend(t, 0, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Proto", r.Proto)
		w.WriteHeader(status)
		_, _ = w.Write([]byte(name))
	})
}

// TestH2CPolicyBackendProtocol: a policy's backendProtocol H2C selects h2c
// for a cluster without appProtocol; HTTP1 in a policy leaves an h2c
// cluster h2c.
func TestH2CPolicyBackendProtocol(t *testing.T) {
	be := namedH2C(t, "a", 200)
	h := newHarness(t)
	cl := h.h2Client()
	for _, tc := range []struct {
		proto route.BackendProtocol
		p     *route.Policy
	}{
		{route.ProtocolHTTP1, pol(func(p *route.Policy) { p.BackendProtocol = route.ProtocolH2C })},
		{route.ProtocolH2C, pol(func(p *route.Policy) { p.BackendProtocol = route.ProtocolHTTP1 })},
	} {
		h.routeProto(tc.proto, tc.p, be.addr)
		resp, body := h2Do(t, cl, h2Req(t, h, "GET", "a", "/", nil))
		if resp.StatusCode != 200 || body != "a" || resp.Header.Get("X-Proto") != "HTTP/2.0" {
			t.Errorf("cluster %v: %d %q %q", tc.proto, resp.StatusCode, body, resp.Header.Get("X-Proto"))
		}
	}
}

// TestH2CPolicyBackendChoice: hash and sticky-cookie policies pick h2c
// backends as they do HTTP/1.1 ones, with Set-Cookie.
func TestH2CPolicyBackendChoice(t *testing.T) {
	var addrs []string
	for _, n := range []string{"b0", "b1", "b2"} {
		addrs = append(addrs, namedH2C(t, n, 200).addr)
	}
	h := newHarness(t)
	cl := h.h2Client()
	h.routeProto(route.ProtocolH2C, pol(func(p *route.Policy) {
		p.Balance, p.HashOn, p.HashName = route.ConsistentHash, route.HashHeader, "x-user"
	}), addrs...)
	for k := 0; k < 4; k++ {
		first := ""
		for i := 0; i < 3; i++ {
			req := h2Req(t, h, "GET", "a", "/", nil)
			req.Header.Set("X-User", "k"+itoa(k))
			_, body := h2Do(t, cl, req)
			if first == "" {
				first = body
			} else if body != first {
				t.Fatalf("key k%d went to %s then %s", k, first, body)
			}
		}
	}
	h.routeProto(route.ProtocolH2C, pol(func(p *route.Policy) { p.AffinityCookie = "aff" }), addrs...)
	resp, pinned := h2Do(t, cl, h2Req(t, h, "GET", "a", "/", nil))
	sc := resp.Header.Get("Set-Cookie")
	val, _, _ := strings.Cut(strings.TrimPrefix(sc, "aff="), ";")
	if !strings.HasPrefix(sc, "aff=") || !strings.HasSuffix(sc, "; Path=/; HttpOnly") {
		t.Fatalf("Set-Cookie %q", sc)
	}
	for i := 0; i < 4; i++ {
		req := h2Req(t, h, "GET", "a", "/", nil)
		req.AddCookie(&http.Cookie{Name: "aff", Value: val})
		resp, body := h2Do(t, cl, req)
		if body != pinned || resp.Header.Get("Set-Cookie") != "" {
			t.Fatalf("with the cookie: %s (want %s), Set-Cookie %q", body, pinned, resp.Header.Get("Set-Cookie"))
		}
	}
}

// TestH2CPolicyRetriesAndTimeouts: status retries, the retry rules for
// connect failures, attempts and the response-head timeout on h2c.
func TestH2CPolicyRetriesAndTimeouts(t *testing.T) {
	bad, good := namedH2C(t, "bad", 503), namedH2C(t, "good", 200)
	h := newHarness(t)
	cl := h.h2Client()
	h.routeProto(route.ProtocolH2C, pol(func(p *route.Policy) { p.MaxAttempts, p.RetryOn = 2, route.RetryStatus503 }), bad.addr, good.addr)
	for i := 0; i < 4; i++ {
		if resp, body := h2Do(t, cl, h2Req(t, h, "GET", "a", "/", nil)); resp.StatusCode != 200 || body != "good" {
			t.Fatalf("status retry: %d %q", resp.StatusCode, body)
		}
	}
	if resp, _ := h2Do(t, cl, h2Req(t, h, "POST", "a", "/", strings.NewReader("x"))); resp.StatusCode != 200 && resp.StatusCode != 503 {
		t.Fatalf("POST: %d", resp.StatusCode)
	}
	// Connect failures are not retried when the policy does not name them.
	h.routeProto(route.ProtocolH2C, pol(func(p *route.Policy) { p.MaxAttempts, p.RetryOn = 3, route.RetryStatus503 }), closedAddr(t))
	if resp, _ := h2Do(t, cl, h2Req(t, h, "GET", "a", "/", nil)); resp.StatusCode != 502 {
		t.Fatalf("connect failure without connect-failure retries: %d, want 502", resp.StatusCode)
	}
	h.routeProto(route.ProtocolH2C, pol(func(p *route.Policy) { p.MaxAttempts = 2 }), closedAddr(t), closedAddr(t), closedAddr(t))
	if resp, _ := h2Do(t, cl, h2Req(t, h, "GET", "a", "/", nil)); resp.StatusCode != 503 {
		t.Fatalf("attempts exhausted: %d, want 503", resp.StatusCode)
	}
	release := make(chan struct{})
	defer close(release)
	slow := newH2CBackend(t, 0, func(w http.ResponseWriter, _ *http.Request) { <-release })
	h.routeProto(route.ProtocolH2C, pol(func(p *route.Policy) { p.RequestTimeout = 200 * time.Millisecond }), slow.addr)
	if resp, _ := h2Do(t, cl, h2Req(t, h, "GET", "a", "/", nil)); resp.StatusCode != 504 {
		t.Fatalf("request timeout: %d, want 504", resp.StatusCode)
	}
}

// TestH2CBackendConnectionsGauge: h2c connections count in
// kakehi_backend_connections, and leave it when closed.
func TestH2CBackendConnectionsGauge(t *testing.T) {
	be := okBackend(t)
	h := newHarness(t)
	h.routeH2C(be.addr)
	if resp, _ := h2Do(t, h.h2Client(), h2Req(t, h, "GET", "a", "/", nil)); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if got := h.metric(metrics.BackendConnections); got != 1 {
		t.Fatalf("gauge %v with one h2c connection, want 1", got)
	}
	h.routeH2C() // the endpoint leaves: its idle connection closes
	waitFor(t, "the gauge to drop", 5*time.Second, func() bool { return h.metric(metrics.BackendConnections) == 0 })
}
