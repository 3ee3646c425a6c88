package proxy

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kakehi/kakehi/pkg/metrics"
)

func TestLimitsAreAnsweredBeforeTheBackend(t *testing.T) {
	h := newHarness(t, func(o *Options) {
		o.MaxHeaderBytes = 1024
		o.MaxHeaderCount = 10
		o.MaxRequestBody = 100
	})
	b := newBackend(t, "b")
	h.route(to(b.addr))
	many := strings.Repeat("X-A: b\r\n", 11)
	cases := []struct {
		name, raw string
		status    int
	}{
		{"head too large", "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + strings.Repeat("x", 1100) + "\r\n\r\n", 431},
		{"request line too long", "GET /" + strings.Repeat("x", 1100) + " HTTP/1.1\r\nHost: a\r\n\r\n", 414},
		{"too many fields", "GET / HTTP/1.1\r\nHost: a\r\n" + many + "\r\n", 431},
		{"content-length over the limit", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 101\r\n\r\n", 413},
		{"chunked over the limit", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n65\r\n" + strings.Repeat("x", 101) + "\r\n0\r\n\r\n", 413},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := h.dial()
			c.send(tc.raw)
			r := c.read(strings.SplitN(tc.raw, " ", 2)[0])
			if r.StatusCode != tc.status || !r.Close {
				t.Fatalf("status %d close %v, want %d and close", r.StatusCode, r.Close, tc.status)
			}
		})
	}
	h.idle()
	if b.connCount() != 0 {
		t.Errorf("backend was contacted")
	}
	// At the limit is fine.
	r := h.dial().roundTrip("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n" + strings.Repeat("x", 100))
	if r.StatusCode != 200 {
		t.Errorf("body at the limit: %d", r.StatusCode)
	}
}

func TestStreamingChunkedBodyOverTheLimitIs413(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.MaxRequestBody = 1000 })
	b := newRawBackend(t, func(b *backend, c net.Conn) { io.Copy(io.Discard, b.recorder(c)) })
	h.route(to(b.addr))
	c := h.dial()
	c.send("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n0123456789abcdef\r\n")
	waitFor(t, "the head to reach the backend", 5*time.Second, func() bool { return strings.Contains(b.rawBytes(), "\r\n\r\n") })
	c.send("3e8\r\n" + strings.Repeat("y", 1000) + "\r\n0\r\n\r\n")
	r := c.read("POST")
	if r.StatusCode != 413 {
		t.Fatalf("status %d, want 413", r.StatusCode)
	}
	if strings.Contains(b.rawBytes(), "y") {
		t.Errorf("data of the chunk over the limit reached the backend")
	}
}

func TestPartialHeadTimesOutWith408(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.ReadHeaderTimeout = 100 * time.Millisecond })
	c := h.dial()
	c.send("GET / HTTP/1.1\r\nHost: a\r\n")
	r := c.read("GET")
	if r.StatusCode != 408 || !r.Close {
		t.Fatalf("status %d close %v, want 408 and close", r.StatusCode, r.Close)
	}
	c.expectClosed()
	h.idle()
	if got := h.metric(metrics.ProxyErrorsTotal, metrics.LabelCause, metrics.CauseClientTimeout); got != 1 {
		t.Errorf("errors{client_timeout} = %v", got)
	}
}

func TestIdleConnectionIsClosedSilently(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.IdleTimeout = 100 * time.Millisecond })
	b := newBackend(t, "b")
	h.route(to(b.addr))
	c := h.dial()
	if r := c.roundTrip(get("a", "/")); r.StatusCode != 200 {
		t.Fatal(r.StatusCode)
	}
	c.expectClosed()
}

func TestStalledRequestBodyIs408(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.BodyIdleTimeout = 100 * time.Millisecond })
	b := newRawBackend(t, func(b *backend, c net.Conn) { io.Copy(io.Discard, c) })
	h.route(to(b.addr))
	c := h.dial()
	c.send("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc")
	r := c.read("POST")
	if r.StatusCode != 408 {
		t.Fatalf("status %d, want 408", r.StatusCode)
	}
	c.expectClosed()
}

func TestExhaustedStreamPoolIs503WithRetryAfter(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.MaxStreams = 1 })
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	b := newBackend(t, "b")
	b.handler = func(w io.Writer, r *http.Request, body []byte) bool {
		entered <- struct{}{}
		<-release
		io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
		return true
	}
	h.route(to(b.addr))
	busy := h.dial()
	busy.send(get("a", "/"))
	<-entered
	r := h.dial().roundTrip(get("a", "/"))
	if r.StatusCode != 503 || r.Header.Get("Retry-After") != "1" {
		t.Fatalf("status %d Retry-After %q, want 503 and 1", r.StatusCode, r.Header.Get("Retry-After"))
	}
	close(release)
	if r := busy.read("GET"); r.StatusCode != 200 {
		t.Fatalf("busy request: %d", r.StatusCode)
	}
	h.idle()
	if got := h.metric(metrics.ProxyErrorsTotal, metrics.LabelCause, metrics.CausePoolExhausted); got != 1 {
		t.Errorf("errors{pool_exhausted} = %v", got)
	}
	if got := h.metric(metrics.RequestsTotal, metrics.LabelCode, "503"); got != 1 {
		t.Errorf("requests_total{503} = %v", got)
	}
}
