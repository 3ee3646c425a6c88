package proxy

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kakehi/kakehi/pkg/metrics"
	"github.com/kakehi/kakehi/pkg/route"
)

// pRule is a rule whose target carries a policy (nil: none).
type pRule struct {
	rule
	p *route.Policy
}

// on returns a Prefix "/" rule for host to addrs with policy p.
func on(host string, p *route.Policy, addrs ...string) pRule {
	return pRule{rule{host: host, path: "/", service: "svc-" + host, addrs: addrs}, p}
}

// routeWith is harness.route for rules with policies.
func (h *harness) routeWith(rules ...pRule) {
	h.version++
	g := h.reg.Begin()
	b := route.NewBuilder(h.version)
	for _, r := range rules {
		var bs []*route.Backend
		for _, a := range r.addrs {
			bs = append(bs, g.Backend(a, "ns/pod-"+a))
		}
		tgt := &route.Target{Namespace: "ns", Ingress: "ing", Service: r.service, Port: "80",
			Cluster: route.NewCluster("ns/"+r.service+":80", bs, r.reason), Policy: r.p}
		b.Add(r.host, route.Rule{Kind: route.PathPrefix, Path: r.path, Target: tgt})
	}
	h.store.Publish(b.Build())
	g.Commit()
}

// pol returns a policy with the defaults of a RoutePolicy that sets
// nothing, changed by f.
func pol(f func(p *route.Policy)) *route.Policy {
	p := &route.Policy{Source: "ns/test", MaxRequestBody: -1}
	f(p)
	return p
}

// names starts n named backends and returns them with their addresses.
func names(t *testing.T, n int) ([]*backend, []string) {
	var bs []*backend
	var addrs []string
	for i := 0; i < n; i++ {
		b := newBackend(t, fmt.Sprintf("b%d", i))
		bs = append(bs, b)
		addrs = append(addrs, b.addr)
	}
	return bs, addrs
}

func TestPolicyConsistentHashOnHeaderKeepsAKeyOnOneBackend(t *testing.T) {
	h := newHarness(t)
	_, addrs := names(t, 4)
	h.routeWith(on("a", pol(func(p *route.Policy) {
		p.Balance, p.HashOn, p.HashName = route.ConsistentHash, route.HashHeader, "X-User"
	}), addrs...))
	c := h.dial()
	seen := map[string]bool{}
	for k := 0; k < 16; k++ {
		first := ""
		for i := 0; i < 4; i++ {
			r := c.roundTrip("GET / HTTP/1.1\r\nHost: a\r\nx-user: user" + itoa(k) + "\r\n\r\n")
			if r.StatusCode != 200 {
				t.Fatalf("status %d", r.StatusCode)
			}
			if first == "" {
				first = r.body
			} else if r.body != first {
				t.Fatalf("key user%d went to %s then %s", k, first, r.body)
			}
		}
		seen[first] = true
	}
	if len(seen) < 2 {
		t.Errorf("16 keys all went to %v: want them spread", seen)
	}
	// No key: round robin over every backend.
	rr := map[string]bool{}
	for i := 0; i < 4; i++ {
		rr[c.roundTrip(get("a", "/")).body] = true
	}
	if len(rr) != 4 {
		t.Errorf("requests without the key reached %v, want round robin over 4", rr)
	}
}

func TestPolicyConsistentHashOnCookieAndClientAddr(t *testing.T) {
	h := newHarness(t)
	_, addrs := names(t, 4)
	h.routeWith(
		on("cookie", pol(func(p *route.Policy) {
			p.Balance, p.HashOn, p.HashName = route.ConsistentHash, route.HashCookie, "uid"
		}), addrs...),
		on("addr", pol(func(p *route.Policy) { p.Balance, p.HashOn = route.ConsistentHash, route.HashClientAddr }), addrs...),
	)
	c := h.dial()
	seen := map[string]bool{}
	for k := 0; k < 12; k++ {
		cookie := "Cookie: a=1; uid=\"u" + itoa(k) + "\"\r\nCookie: z=2\r\n"
		first := c.roundTrip("GET / HTTP/1.1\r\nHost: cookie\r\n" + cookie + "\r\n").body
		for i := 0; i < 3; i++ {
			if got := c.roundTrip("GET / HTTP/1.1\r\nHost: cookie\r\nCookie: uid=u" + itoa(k) + "\r\n\r\n").body; got != first {
				t.Fatalf("cookie u%d went to %s then %s", k, first, got)
			}
		}
		seen[first] = true
	}
	if len(seen) < 2 {
		t.Errorf("12 cookie keys all went to %v", seen)
	}
	first := c.roundTrip(get("addr", "/")).body
	for i := 0; i < 6; i++ {
		if got := h.dial().roundTrip(get("addr", "/")).body; got != first {
			t.Fatalf("the same client address went to %s then %s", first, got)
		}
	}
}

func TestPolicyAffinityCookieSticks(t *testing.T) {
	h := newHarness(t)
	_, addrs := names(t, 3)
	h.routeWith(on("a", pol(func(p *route.Policy) { p.AffinityCookie, p.AffinityTTL = "kk-aff", 90*time.Second }), addrs...),
		on("plain", nil, addrs...))
	c := h.dial()
	r := c.roundTrip(get("a", "/"))
	sc := r.Header.Get("Set-Cookie")
	name, rest, _ := strings.Cut(sc, "=")
	value, attrs, _ := strings.Cut(rest, ";")
	if name != "kk-aff" || attrs != " Path=/; HttpOnly; Max-Age=90" || value == "" {
		t.Fatalf("Set-Cookie %q: want kk-aff=<key>; Path=/; HttpOnly; Max-Age=90", sc)
	}
	for _, a := range addrs {
		if strings.Contains(value, a) || strings.Contains(value, "127.0.0.1") {
			t.Fatalf("cookie value %q reveals an address", value)
		}
	}
	pinned := r.body
	for i := 0; i < 6; i++ {
		r := c.roundTrip("GET / HTTP/1.1\r\nHost: a\r\nCookie: x=y; kk-aff=" + value + "\r\n\r\n")
		if r.body != pinned || r.Header.Get("Set-Cookie") != "" {
			t.Fatalf("request %d with the cookie: backend %s (want %s), Set-Cookie %q", i, r.body, pinned, r.Header.Get("Set-Cookie"))
		}
	}
	// A value naming no backend is replaced.
	r = c.roundTrip("GET / HTTP/1.1\r\nHost: a\r\nCookie: kk-aff=bogus\r\n\r\n")
	if !strings.HasPrefix(r.Header.Get("Set-Cookie"), "kk-aff=") {
		t.Errorf("a stale cookie got Set-Cookie %q, want a new one", r.Header.Get("Set-Cookie"))
	}
	if got := c.roundTrip(get("plain", "/")).Header.Get("Set-Cookie"); got != "" {
		t.Errorf("a route without affinity set %q", got)
	}
}

func TestPolicyCookieValueFormat(t *testing.T) {
	reg := route.NewRegistry(func(*route.Backend) {})
	g := reg.Begin()
	b := g.Backend("10.0.0.7:8080", "ns/pod")
	g.Commit()
	ps := policyState{p: pol(func(p *route.Policy) { p.AffinityCookie = "s" })}
	if got, want := string(ps.cookieValue(b, true)), "s="+b.StickyKey()+"; Path=/; HttpOnly; Secure"; got != want {
		t.Errorf("cookie %q, want %q", got, want)
	}
	ps.cookie, ps.hasCookie = []byte(b.StickyKey()), true
	if v := ps.cookieValue(b, false); v != nil {
		t.Errorf("a request that carried the right value got %q", v)
	}
	if strings.Contains(b.StickyKey(), "10.0.0.7") {
		t.Errorf("sticky key %q reveals the address", b.StickyKey())
	}
}

func TestPolicyLeastRequestAvoidsABusyBackend(t *testing.T) {
	h := newHarness(t)
	release := make(chan struct{})
	busy := newBackend(t, "busy")
	busy.handler = func(w io.Writer, r *http.Request, body []byte) bool {
		if r.URL.Path == "/slow" {
			<-release
		}
		return busy.answerName(w, r, body)
	}
	free := newBackend(t, "free")
	h.routeWith(on("a", nil, busy.addr))
	slow := []*client{h.dial(), h.dial(), h.dial()}
	for _, c := range slow {
		c.send(get("a", "/slow"))
	}
	waitFor(t, "three slow requests on the busy backend", 5*time.Second, func() bool { return len(busy.got()) == 3 })
	h.routeWith(on("a", pol(func(p *route.Policy) { p.Balance = route.LeastRequest }), busy.addr, free.addr))
	c := h.dial()
	for i := 0; i < 10; i++ {
		if r := c.roundTrip(get("a", "/")); r.body != "free" {
			t.Fatalf("request %d went to %s while the other backend had 3 requests in progress", i, r.body)
		}
	}
	close(release)
	for _, c := range slow {
		if r := c.read("GET"); r.StatusCode != 200 {
			t.Errorf("slow request: %d", r.StatusCode)
		}
	}
}

func TestPolicyRequestTimeoutIs504(t *testing.T) {
	h := newHarness(t)
	release := make(chan struct{})
	b := newBackend(t, "slow")
	b.handler = func(w io.Writer, r *http.Request, body []byte) bool {
		<-release
		return b.answerName(w, r, body)
	}
	h.routeWith(on("a", pol(func(p *route.Policy) { p.RequestTimeout = 200 * time.Millisecond }), b.addr),
		on("plain", nil, b.addr))
	start := time.Now()
	if r := h.dial().roundTrip(get("a", "/")); r.StatusCode != 504 {
		t.Fatalf("status %d, want 504", r.StatusCode)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("504 after %v, want about 200ms", d)
	}
	c := h.dial()
	c.send(get("plain", "/"))
	waitFor(t, "the second request at the backend", 5*time.Second, func() bool { return len(b.got()) == 2 })
	close(release)
	if r := c.read("GET"); r.StatusCode != 200 {
		t.Errorf("without the policy: %d, want 200", r.StatusCode)
	}
}

func TestPolicyConnectTimeoutOverridesTheDefault(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.BackendConnectTimeout = 30 * time.Second })
	h.routeWith(on("a", pol(func(p *route.Policy) { p.ConnectTimeout = 150 * time.Millisecond }), blackholeAddr(t)))
	start := time.Now()
	if r := h.dial().roundTrip(get("a", "/")); r.StatusCode != 504 {
		t.Fatalf("status %d, want 504", r.StatusCode)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("504 after %v, want the policy's 150ms", d)
	}
}

func TestPolicyIdleTimeoutCutsAStalledBody(t *testing.T) {
	h := newHarness(t)
	stop := make(chan struct{})
	defer close(stop)
	b := newBackend(t, "stall")
	b.handler = func(w io.Writer, r *http.Request, body []byte) bool {
		io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf!")
		<-stop
		return false
	}
	h.routeWith(on("a", pol(func(p *route.Policy) { p.IdleTimeout = 200 * time.Millisecond }), b.addr))
	c := h.dial()
	c.send(get("a", "/"))
	start := time.Now()
	if _, err := c.tryRead("GET"); err == nil {
		t.Fatal("the stalled body was relayed as complete")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("cut after %v, want the policy's 200ms", d)
	}
	h.idle()
	if l := h.logLines(1)[0]; l["cause"] != causeBackendBodyTimeout {
		t.Errorf("cause %v, want %s", l["cause"], causeBackendBodyTimeout)
	}
}

func TestPolicyMaxAttemptsOverridesTheDefault(t *testing.T) {
	h := newHarness(t) // 3 attempts by default
	dead := []string{closedAddr(t), closedAddr(t), closedAddr(t), closedAddr(t), closedAddr(t)}
	h.routeWith(on("a", pol(func(p *route.Policy) { p.MaxAttempts = 5 }), dead...))
	if r := h.dial().roundTrip(get("a", "/")); r.StatusCode != 503 {
		t.Fatalf("status %d, want 503", r.StatusCode)
	}
	h.idle()
	if got := h.metric(metrics.BackendRetriesTotal); got != 4 {
		t.Errorf("retries = %v, want 4 (5 attempts)", got)
	}
	if l := h.logLines(1)[0]; l["attempts"].(float64) != 5 {
		t.Errorf("attempts %v, want 5", l["attempts"])
	}
}

func TestPolicyRetryOnWithoutConnectFailureIs502(t *testing.T) {
	h := newHarness(t)
	live := newBackend(t, "live")
	h.routeWith(on("a", pol(func(p *route.Policy) { p.MaxAttempts, p.RetryOn = 3, route.RetryStatus503 }), closedAddr(t), live.addr))
	codes := map[int]int{}
	for i := 0; i < 4; i++ {
		codes[h.dial().roundTrip(get("a", "/")).StatusCode]++
	}
	if codes[502] != 2 || codes[200] != 2 {
		t.Errorf("statuses %v: want the refused endpoint's requests answered 502, not retried", codes)
	}
	h.idle()
	if got := h.metric(metrics.BackendRetriesTotal); got != 0 {
		t.Errorf("retries = %v, want 0", got)
	}
}

// statusBackend answers status to every request.
func statusBackend(t *testing.T, name string, status int) *backend {
	b := newBackend(t, name)
	b.handler = func(w io.Writer, r *http.Request, body []byte) bool {
		fmt.Fprintf(w, "HTTP/1.1 %d X\r\nContent-Length: %d\r\n\r\n%s", status, len(name), name)
		return true
	}
	return b
}

func TestPolicyRetryOnStatusTriesAnotherBackend(t *testing.T) {
	h := newHarness(t)
	bad := statusBackend(t, "bad", 503)
	good := newBackend(t, "good")
	h.routeWith(on("a", pol(func(p *route.Policy) { p.MaxAttempts, p.RetryOn = 2, route.RetryStatus503 }), bad.addr, good.addr),
		on("off", nil, bad.addr, good.addr))
	c := h.dial()
	for i := 0; i < 6; i++ {
		if r := c.roundTrip(get("a", "/")); r.StatusCode != 200 || r.body != "good" {
			t.Fatalf("request %d: %d %q, want 200 from good", i, r.StatusCode, r.body)
		}
	}
	h.idle()
	retries := h.metric(metrics.BackendRetriesTotal)
	if n := len(bad.got()); retries < 1 || float64(n) != retries {
		t.Errorf("retries = %v, want one per request that reached bad (%d)", retries, n)
	}
	if bad.connCount() != 1 {
		t.Errorf("bad backend saw %d connections: the discarded responses' connection should be reused", bad.connCount())
	}
	// A request with a body is not retried: the 503 is relayed.
	got503 := 0
	for i := 0; i < 2; i++ {
		r := c.roundTrip("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi")
		if r.StatusCode == 503 {
			got503++
		}
	}
	// Without the policy the 503 reaches the client.
	for i := 0; i < 2; i++ {
		if c.roundTrip(get("off", "/")).StatusCode == 503 {
			got503++
		}
	}
	if got503 != 2 {
		t.Errorf("%d 503s relayed for the POSTs and the route without policy, want 2", got503)
	}
	if h.metric(metrics.BackendRetriesTotal) != retries {
		t.Errorf("the POSTs or the route without policy were retried")
	}
}

func TestPolicyRetryOnStatusLastAttemptIsRelayed(t *testing.T) {
	h := newHarness(t)
	a, b := statusBackend(t, "a", 502), statusBackend(t, "b", 504)
	h.routeWith(on("x", pol(func(p *route.Policy) {
		p.MaxAttempts, p.RetryOn = 3, route.RetryStatus502|route.RetryStatus504
	}), a.addr, b.addr))
	r := h.dial().roundTrip(get("x", "/"))
	if r.StatusCode != 502 && r.StatusCode != 504 {
		t.Fatalf("status %d, want the last attempt's 502 or 504", r.StatusCode)
	}
	h.idle()
	if l := h.logLines(1)[0]; l["attempts"].(float64) != 3 {
		t.Errorf("attempts %v, want 3", l["attempts"])
	}
}

func TestPolicyMaxRequestBody(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.MaxRequestBody = 1000 })
	b := newBackend(t, "b")
	h.routeWith(on("small", pol(func(p *route.Policy) { p.MaxRequestBody = 100 }), b.addr),
		on("open", pol(func(p *route.Policy) { p.MaxRequestBody = 0 }), b.addr),
		on("plain", nil, b.addr))
	post := func(host string, n int) int {
		return h.dial().roundTrip("POST / HTTP/1.1\r\nHost: " + host + "\r\nContent-Length: " + itoa(n) + "\r\n\r\n" + strings.Repeat("x", n)).StatusCode
	}
	for _, tc := range []struct {
		host string
		n    int
		want int
	}{{"small", 100, 200}, {"small", 101, 413}, {"plain", 900, 200}, {"plain", 1001, 413}, {"open", 5000, 200}} {
		if got := post(tc.host, tc.n); got != tc.want {
			t.Errorf("%s with %d bytes: %d, want %d", tc.host, tc.n, got, tc.want)
		}
	}
	c := h.dial()
	c.send("POST / HTTP/1.1\r\nHost: small\r\nTransfer-Encoding: chunked\r\n\r\n50\r\n" + strings.Repeat("y", 80) + "\r\n")
	c.send("50\r\n" + strings.Repeat("z", 80) + "\r\n0\r\n\r\n")
	if r := c.read("POST"); r.StatusCode != 413 {
		t.Errorf("chunked body over the route's limit: %d, want 413", r.StatusCode)
	}
	if strings.Contains(b.rawBytes(), "z") {
		t.Errorf("the chunk over the limit reached the backend")
	}
}

func TestPolicyOnHTTP2(t *testing.T) {
	h := newHarness(t)
	bs, addrs := names(t, 3)
	bad := statusBackend(t, "bad", 503)
	h.routeWith(
		on("hash", pol(func(p *route.Policy) {
			p.Balance, p.HashOn, p.HashName = route.ConsistentHash, route.HashHeader, "x-user"
		}), addrs...),
		on("sticky", pol(func(p *route.Policy) { p.AffinityCookie = "aff" }), addrs...),
		on("retry", pol(func(p *route.Policy) { p.MaxAttempts, p.RetryOn = 2, route.RetryStatus503 }), bad.addr, bs[0].addr),
		on("limit", pol(func(p *route.Policy) { p.MaxRequestBody = 10 }), addrs...),
	)
	cl := h.h2Client()
	for k := 0; k < 4; k++ {
		first := ""
		for i := 0; i < 3; i++ {
			req := h2Req(t, h, "GET", "hash", "/", nil)
			req.Header.Set("X-User", "k"+itoa(k))
			_, body := h2Do(t, cl, req)
			if first == "" {
				first = body
			} else if body != first {
				t.Fatalf("key k%d went to %s then %s", k, first, body)
			}
		}
	}
	resp, pinned := h2Do(t, cl, h2Req(t, h, "GET", "sticky", "/", nil))
	sc := resp.Header.Get("Set-Cookie")
	val, _, _ := strings.Cut(strings.TrimPrefix(sc, "aff="), ";")
	if !strings.HasPrefix(sc, "aff=") || !strings.HasSuffix(sc, "; Path=/; HttpOnly") {
		t.Fatalf("Set-Cookie %q", sc)
	}
	for i := 0; i < 4; i++ {
		req := h2Req(t, h, "GET", "sticky", "/", nil)
		req.AddCookie(&http.Cookie{Name: "other", Value: "1"})
		req.AddCookie(&http.Cookie{Name: "aff", Value: val})
		resp, body := h2Do(t, cl, req)
		if body != pinned || resp.Header.Get("Set-Cookie") != "" {
			t.Fatalf("with the cookie: %s (want %s), Set-Cookie %q", body, pinned, resp.Header.Get("Set-Cookie"))
		}
	}
	for i := 0; i < 4; i++ {
		if resp, body := h2Do(t, cl, h2Req(t, h, "GET", "retry", "/", nil)); resp.StatusCode != 200 || body != "b0" {
			t.Fatalf("retry route: %d %q\n%s", resp.StatusCode, body, h.log.String())
		}
	}
	if resp, _ := h2Do(t, cl, h2Req(t, h, "POST", "limit", "/", strings.NewReader(strings.Repeat("x", 11)))); resp.StatusCode != 413 {
		t.Errorf("body over the route's limit: %d, want 413", resp.StatusCode)
	}
	if resp, _ := h2Do(t, cl, h2Req(t, h, "POST", "limit", "/", strings.NewReader("0123456789"))); resp.StatusCode != 200 {
		t.Errorf("body at the route's limit: %d, want 200", resp.StatusCode)
	}
	h.idle()
	if got, n := h.metric(metrics.BackendRetriesTotal), len(bad.got()); got < 1 || got != float64(n) {
		t.Errorf("retries = %v, want one per request that reached bad (%d)", got, n)
	}
}

func TestPolicyRequestTimeoutOnHTTP2(t *testing.T) {
	h := newHarness(t)
	release := make(chan struct{})
	defer close(release)
	b := newBackend(t, "slow")
	b.handler = func(w io.Writer, r *http.Request, body []byte) bool {
		<-release
		return false
	}
	h.routeWith(on("a", pol(func(p *route.Policy) { p.RequestTimeout = 200 * time.Millisecond }), b.addr))
	if resp, _ := h2Do(t, h.h2Client(), h2Req(t, h, "GET", "a", "/", nil)); resp.StatusCode != 504 {
		t.Fatalf("status %d, want 504", resp.StatusCode)
	}
}
