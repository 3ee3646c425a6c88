package proxy

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestHopByHopFieldsAreRemoved(t *testing.T) {
	h := newHarness(t)
	b := newBackend(t, "b")
	h.route(to(b.addr))
	c := h.dial()
	r := c.roundTrip("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Secret, Content-Length, Host\r\n" +
		"Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: gzip\r\nUpgrade: h2c\r\nHTTP2-Settings: AAA\r\n" +
		"Proxy-Authorization: Basic x\r\nX-Secret: s\r\nX-Kept: k\r\nContent-Length: 0\r\n\r\n")
	if r.StatusCode != 200 {
		t.Fatalf("status %d", r.StatusCode)
	}
	got := b.got()[0]
	for _, name := range []string{"Connection", "Keep-Alive", "Proxy-Connection", "Te", "Upgrade", "Http2-Settings", "Proxy-Authorization", "X-Secret"} {
		if v, ok := got.header[name]; ok {
			t.Errorf("%s reached the backend: %q", name, v)
		}
	}
	if got.header.Get("X-Kept") != "k" || got.host != "a" {
		t.Errorf("end-to-end fields lost: host %q header %v", got.host, got.header)
	}
	// Connection naming a framing field never removes it.
	if got.header.Get("Content-Length") == "" && !strings.Contains(b.rawBytes(), "Content-Length: 0") {
		t.Errorf("Content-Length removed because Connection named it:\n%s", b.rawBytes())
	}
}

func TestTETrailersIsForwarded(t *testing.T) {
	h := newHarness(t)
	b := newBackend(t, "b")
	h.route(to(b.addr))
	h.dial().roundTrip("GET / HTTP/1.1\r\nHost: a\r\nTE: trailers\r\n\r\n")
	if got := b.got()[0].header.Get("Te"); got != "trailers" {
		t.Errorf("TE %q, want trailers", got)
	}
}

func TestResponseHopByHopFieldsAreRemoved(t *testing.T) {
	h := newHarness(t)
	b := newBackend(t, "b")
	b.handler = func(w io.Writer, r *http.Request, body []byte) bool {
		io.WriteString(w, "HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Internal\r\nKeep-Alive: timeout=5\r\nX-Internal: 1\r\nX-App: 2\r\nContent-Length: 2\r\n\r\nok")
		return true
	}
	h.route(to(b.addr))
	r := h.dial().roundTrip(get("a", "/"))
	for _, name := range []string{"Keep-Alive", "X-Internal"} {
		if v, ok := r.Header[name]; ok {
			t.Errorf("%s reached the client: %q", name, v)
		}
	}
	if r.Header.Get("X-App") != "2" || r.body != "ok" {
		t.Errorf("got %v %q", r.Header, r.body)
	}
}

func TestForwardedFieldsAreSet(t *testing.T) {
	h := newHarness(t)
	b := newBackend(t, "b")
	h.route(to(b.addr))
	port := h.addr[strings.LastIndexByte(h.addr, ':')+1:]
	h.dial().roundTrip("GET / HTTP/1.1\r\nHost: a.example:8080\r\nX-Forwarded-For: 6.6.6.6\r\n" +
		"X-Forwarded-Host: evil\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Port: 1\r\n\r\n")
	got := b.got()[0].header
	want := map[string]string{
		"X-Forwarded-For":   "127.0.0.1",
		"X-Forwarded-Proto": "http",
		"X-Forwarded-Host":  "a.example:8080",
		"X-Forwarded-Port":  port,
	}
	for k, v := range want {
		if vs := got.Values(k); len(vs) != 1 || vs[0] != v {
			t.Errorf("%s = %q, want exactly [%q]", k, vs, v)
		}
	}
	id := got.Get("X-Request-Id")
	if len(id) < 14 {
		t.Errorf("X-Request-Id %q: want a generated id", id)
	}
	h.dial().roundTrip(get("a", "/"))
	if id2 := b.got()[1].header.Get("X-Request-Id"); id2 == id || id2 == "" {
		t.Errorf("request ids %q and %q: want distinct ids", id, id2)
	}
}

func TestClientRequestIDIsKept(t *testing.T) {
	h := newHarness(t)
	b := newBackend(t, "b")
	h.route(to(b.addr))
	h.dial().roundTrip("GET / HTTP/1.1\r\nHost: a\r\nX-Request-Id: abc-123\r\n\r\n")
	if vs := b.got()[0].header.Values("X-Request-Id"); len(vs) != 1 || vs[0] != "abc-123" {
		t.Errorf("X-Request-Id %q, want [abc-123]", vs)
	}
}

func TestTrustedForwardedFieldsAreKept(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.TrustForwardedHeaders = true })
	b := newBackend(t, "b")
	h.route(to(b.addr))
	h.dial().roundTrip("GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: https\r\n\r\n")
	got := b.got()[0].header
	if xff := got.Values("X-Forwarded-For"); strings.Join(xff, ", ") != "6.6.6.6, 127.0.0.1" {
		t.Errorf("X-Forwarded-For %q, want the client's list then 127.0.0.1", xff)
	}
	if p := got.Values("X-Forwarded-Proto"); len(p) != 1 || p[0] != "https" {
		t.Errorf("X-Forwarded-Proto %q, want [https]", p)
	}
}

func TestAbsoluteFormIsForwardedAsOriginForm(t *testing.T) {
	h := newHarness(t)
	a, o := newBackend(t, "a"), newBackend(t, "other")
	h.route(rule{host: "a.example", path: "/", service: "a", addrs: []string{a.addr}},
		rule{host: "other", path: "/", service: "o", addrs: []string{o.addr}})
	r := h.dial().roundTrip("GET HTTP://a.example/p?q=1 HTTP/1.1\r\nHost: other\r\n\r\n")
	if r.body != "a" {
		t.Fatalf("routed to %q, want the target's authority a.example", r.body)
	}
	got := a.got()[0]
	if got.target != "/p?q=1" || got.host != "a.example" || len(got.header.Values("Host")) > 1 {
		t.Errorf("backend saw target %q host %q", got.target, got.host)
	}
	if !strings.HasPrefix(a.rawBytes(), "GET /p?q=1 HTTP/1.1\r\n") {
		t.Errorf("request line %q", strings.SplitN(a.rawBytes(), "\r\n", 2)[0])
	}
}

func TestHTTP10RequestIsForwardedAsHTTP11(t *testing.T) {
	h := newHarness(t)
	b := newBackend(t, "b")
	h.route(to(b.addr))
	c := h.dial()
	r := c.roundTrip("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
	if r.StatusCode != 200 || r.Close {
		t.Fatalf("status %d close %v: want a kept-alive 200", r.StatusCode, r.Close)
	}
	r = c.roundTrip("GET / HTTP/1.0\r\n\r\n")
	if !r.Close {
		t.Errorf("HTTP/1.0 without keep-alive: want Connection: close")
	}
	c.expectClosed()
	if got := b.got(); got[0].proto != "HTTP/1.1" {
		t.Errorf("backend saw %s, want HTTP/1.1", got[0].proto)
	}
	if b.connCount() != 1 {
		t.Errorf("backend connections %d, want 1 (reused across HTTP/1.0 requests)", b.connCount())
	}
}
