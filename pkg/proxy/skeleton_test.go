package proxy

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kakehi/kakehi/pkg/metrics"
)

func TestForwardsToTheMatchedBackend(t *testing.T) {
	h := newHarness(t)
	a, b := newBackend(t, "alpha"), newBackend(t, "beta")
	h.route(rule{host: "a.example", path: "/", service: "a", addrs: []string{a.addr}},
		rule{host: "b.example", path: "/", service: "b", addrs: []string{b.addr}})
	c := h.dial()
	for _, tc := range []struct{ host, want string }{{"a.example", "alpha"}, {"B.Example:8080", "beta"}, {"a.example", "alpha"}} {
		r := c.roundTrip(get(tc.host, "/x?q=1"))
		if r.StatusCode != 200 || r.body != tc.want {
			t.Fatalf("%s: got %d %q, want 200 %q", tc.host, r.StatusCode, r.body, tc.want)
		}
		if r.ContentLength != int64(len(tc.want)) {
			t.Errorf("Content-Length %d, want %d", r.ContentLength, len(tc.want))
		}
		if r.Header.Get("Date") == "" || r.Header.Get("Server") != "kakehi" {
			t.Errorf("Date %q Server %q, want a date and kakehi", r.Header.Get("Date"), r.Header.Get("Server"))
		}
	}
	got := a.got()
	if len(got) != 2 || got[0].target != "/x?q=1" || got[0].host != "a.example" {
		t.Fatalf("backend alpha saw %+v", got)
	}
}

func TestBackendServerHeaderIsKept(t *testing.T) {
	h := newHarness(t)
	b := newBackend(t, "x")
	b.handler = func(w io.Writer, r *http.Request, body []byte) bool {
		io.WriteString(w, "HTTP/1.1 200 OK\r\nServer: app/1\r\nDate: Mon, 02 Jan 2006 15:04:05 GMT\r\nContent-Length: 2\r\n\r\nok")
		return true
	}
	h.route(to(b.addr))
	r := h.dial().roundTrip(get("a", "/"))
	if r.Header.Get("Server") != "app/1" || r.Header.Get("Date") != "Mon, 02 Jan 2006 15:04:05 GMT" {
		t.Errorf("Server %q Date %q: the backend's values must be kept", r.Header.Get("Server"), r.Header.Get("Date"))
	}
	if len(r.Header.Values("Server")) != 1 || len(r.Header.Values("Date")) != 1 {
		t.Errorf("duplicated Server or Date: %v", r.Header)
	}
}

func TestNoRouteIs404(t *testing.T) {
	h := newHarness(t)
	c := h.dial()
	r := c.roundTrip(get("a.example", "/")) // no table published yet
	if r.StatusCode != 404 {
		t.Fatalf("no table: got %d, want 404", r.StatusCode)
	}
	b := newBackend(t, "x")
	h.route(rule{host: "a.example", path: "/app", service: "s", addrs: []string{b.addr}})
	for _, p := range []string{"/", "/apple", "/other/app"} {
		r := c.roundTrip(get("a.example", p))
		if r.StatusCode != 404 || r.Header.Get("Date") == "" || r.Header.Get("Server") != "kakehi" {
			t.Errorf("%s: got %d %v, want 404 with Date and Server", p, r.StatusCode, r.Header)
		}
	}
	if r := c.roundTrip(get("a.example", "/app/x")); r.StatusCode != 200 {
		t.Errorf("/app/x: got %d after 404s on the same connection", r.StatusCode)
	}
	h.idle()
	if got := h.metric(metrics.RequestsTotal, metrics.LabelCode, "404", metrics.LabelClass, "4xx"); got != 4 {
		t.Errorf("requests_total{code=404} = %v, want 4", got)
	}
}

func TestNoReadyEndpointIs503NamingTheReason(t *testing.T) {
	h := newHarness(t)
	h.route(rule{host: "", path: "/", service: "web", reason: "service ns/web not found"})
	r := h.dial().roundTrip(get("a", "/"))
	if r.StatusCode != 503 || !strings.Contains(r.body, "service ns/web not found") {
		t.Fatalf("got %d %q, want 503 naming the reason", r.StatusCode, r.body)
	}
	h.route(rule{host: "", path: "/", service: "web"})
	r = h.dial().roundTrip(get("a", "/"))
	if r.StatusCode != 503 || !strings.Contains(r.body, "ns/web:80") {
		t.Fatalf("got %d %q, want 503 naming the cluster", r.StatusCode, r.body)
	}
	h.idle()
	if got := h.metric(metrics.ProxyErrorsTotal, metrics.LabelCause, metrics.CauseNoBackend); got != 2 {
		t.Errorf("errors{no_backend} = %v, want 2", got)
	}
}

func TestKeepAliveReusesOneBackendConnection(t *testing.T) {
	h := newHarness(t)
	b := newBackend(t, "x")
	h.route(to(b.addr))
	c := h.dial()
	for i := 0; i < 20; i++ {
		if r := c.roundTrip(get("a", "/")); r.StatusCode != 200 {
			t.Fatalf("request %d: %d", i, r.StatusCode)
		}
	}
	if n := b.connCount(); n != 1 {
		t.Errorf("backend saw %d connections for 20 sequential requests, want 1", n)
	}
	h.idle()
	if got := h.metric(metrics.BackendIdleConnections); got != 1 {
		t.Errorf("idle backend connections gauge = %v, want 1", got)
	}
}

func TestRoundRobinReachesEveryEndpoint(t *testing.T) {
	h := newHarness(t)
	var addrs []string
	var bs []*backend
	for i := 0; i < 4; i++ {
		b := newBackend(t, "b"+itoa(i))
		bs = append(bs, b)
		addrs = append(addrs, b.addr)
	}
	h.route(to(addrs...))
	c := h.dial()
	seen := map[string]int{}
	for i := 0; i < 40; i++ {
		seen[c.roundTrip(get("a", "/")).body]++
	}
	for _, b := range bs {
		if seen[b.name] != 10 {
			t.Errorf("%s answered %d of 40, want 10: %v", b.name, seen[b.name], seen)
		}
	}
}

func TestActiveGaugeAndPoolReturnToZero(t *testing.T) {
	h := newHarness(t)
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	b := newBackend(t, "slow")
	b.handler = func(w io.Writer, r *http.Request, body []byte) bool {
		entered <- struct{}{}
		<-release
		io.WriteString(w, "HTTP/1.1 204 No Content\r\n\r\n")
		return true
	}
	h.route(to(b.addr))
	c := h.dial()
	c.send(get("a", "/"))
	<-entered
	if got := h.metric(metrics.ActiveRequests); got != 1 {
		t.Errorf("active gauge during a request = %v, want 1", got)
	}
	if got := h.srv.Pool().InUse(); got != 1 {
		t.Errorf("streams in use during a request = %d, want 1", got)
	}
	close(release)
	if r := c.read("GET"); r.StatusCode != 204 {
		t.Fatalf("got %d", r.StatusCode)
	}
	h.idle()
	waitFor(t, "stream released while idle", 5*time.Second, func() bool { return h.srv.Pool().InUse() == 0 })
}

func TestIdleBackendPoolIsBounded(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.MaxIdleBackendConnsPerEndpoint = 2 })
	const n = 5
	entered := make(chan struct{}, n)
	release := make(chan struct{})
	b := newBackend(t, "b")
	b.handler = func(w io.Writer, r *http.Request, body []byte) bool {
		entered <- struct{}{}
		<-release
		io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
		return true
	}
	h.route(to(b.addr))
	var cs []*client
	for i := 0; i < n; i++ {
		c := h.dial()
		c.send(get("a", "/"))
		cs = append(cs, c)
	}
	for i := 0; i < n; i++ {
		<-entered
	}
	if got := h.metric(metrics.BackendConnections); got != n {
		t.Errorf("open backend connections = %v, want %d", got, n)
	}
	close(release)
	for _, c := range cs {
		if r := c.read("GET"); r.StatusCode != 200 {
			t.Fatal(r.StatusCode)
		}
	}
	h.idle()
	waitFor(t, "the surplus connections to close", 5*time.Second, func() bool {
		return h.metric(metrics.BackendConnections) == 2
	})
	if got := h.metric(metrics.BackendIdleConnections); got != 2 {
		t.Errorf("idle backend connections = %v, want 2 (the bound)", got)
	}
}

func TestProxyAnswersToHEADHaveNoBody(t *testing.T) {
	h := newHarness(t)
	c := h.dial()
	r := c.roundTrip("HEAD / HTTP/1.1\r\nHost: a\r\n\r\n")
	if r.StatusCode != 404 || r.body != "" || r.ContentLength <= 0 {
		t.Fatalf("got %d, body %q, Content-Length %d: want 404 with a length and no body", r.StatusCode, r.body, r.ContentLength)
	}
	if r := c.roundTrip(get("a", "/")); r.StatusCode != 404 || r.body == "" {
		t.Fatalf("next request on the connection: %d %q", r.StatusCode, r.body)
	}
}
