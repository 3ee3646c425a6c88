package proxy

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kakehi/kakehi/pkg/metrics"
)

// logLines waits until the access log has n lines and returns them.
func (h *harness) logLines(n int) []map[string]any {
	h.t.Helper()
	var lines []string
	waitFor(h.t, itoa(n)+" access-log lines", 5*time.Second, func() bool {
		lines = strings.Split(strings.TrimSuffix(h.log.String(), "\n"), "\n")
		return len(lines) >= n && lines[0] != ""
	})
	out := make([]map[string]any, len(lines))
	for i, l := range lines {
		if err := json.Unmarshal([]byte(l), &out[i]); err != nil {
			h.t.Fatalf("access-log line %d is not JSON: %v\n%s", i, err, l)
		}
	}
	return out
}

func TestRefusedConnectIsRetriedOnAnotherEndpoint(t *testing.T) {
	h := newHarness(t)
	live := newBackend(t, "live")
	h.route(to(closedAddr(t), live.addr))
	c := h.dial()
	for i := 0; i < 6; i++ {
		if r := c.roundTrip(get("a", "/")); r.StatusCode != 200 || r.body != "live" {
			t.Fatalf("request %d: %d %q", i, r.StatusCode, r.body)
		}
	}
	h.idle()
	if got := h.metric(metrics.BackendRetriesTotal); got < 1 || got > 6 {
		t.Errorf("retries = %v, want between 1 and 6", got)
	}
	for _, l := range h.logLines(6) {
		if a := l["attempts"].(float64); a > 2 || l["backend_addr"] != live.addr {
			t.Errorf("attempts %v backend %v: want at most 2, ending on the live endpoint", a, l["backend_addr"])
		}
	}
}

func TestAttemptsExhaustedIs503(t *testing.T) {
	h := newHarness(t)
	h.route(to(closedAddr(t), closedAddr(t)))
	r := h.dial().roundTrip(get("a", "/"))
	if r.StatusCode != 503 || r.Header.Get("Retry-After") == "" {
		t.Fatalf("got %d Retry-After %q, want 503 with Retry-After", r.StatusCode, r.Header.Get("Retry-After"))
	}
	h.idle()
	if got := h.metric(metrics.BackendRetriesTotal); got != 2 {
		t.Errorf("retries = %v, want 2 (3 attempts)", got)
	}
	if got := h.metric(metrics.ProxyErrorsTotal, metrics.LabelCause, metrics.CauseRetriesExhausted); got != 1 {
		t.Errorf("errors{retries_exhausted} = %v, want 1", got)
	}
	if l := h.logLines(1)[0]; l["attempts"].(float64) != 3 || l["status"].(float64) != 503 {
		t.Errorf("log line %v: want 3 attempts and status 503", l)
	}
}

func TestBackendThatReadsThenClosesIs502Once(t *testing.T) {
	h := newHarness(t)
	calls := make(chan struct{}, 10)
	b := newRawBackend(t, func(b *backend, c net.Conn) {
		if _, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
			calls <- struct{}{}
		}
	})
	other := newRawBackend(t, func(b *backend, c net.Conn) {
		if _, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
			calls <- struct{}{}
		}
	})
	h.route(to(b.addr, other.addr))
	c := h.dial()
	r := c.roundTrip("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi")
	if r.StatusCode != 502 {
		t.Fatalf("status %d, want 502", r.StatusCode)
	}
	c.expectClosed()
	h.idle()
	if n := len(calls); n != 1 {
		t.Errorf("backends called %d times, want exactly 1", n)
	}
	if got := h.metric(metrics.BackendRetriesTotal); got != 0 {
		t.Errorf("retries = %v, want 0", got)
	}
}

func TestSilentBackendIs504(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.BackendResponseTimeout = 100 * time.Millisecond })
	b := newRawBackend(t, func(b *backend, c net.Conn) {
		io.Copy(io.Discard, c) // reads, never answers
	})
	h.route(to(b.addr))
	start := time.Now()
	r := h.dial().roundTrip(get("a", "/"))
	if r.StatusCode != 504 {
		t.Fatalf("status %d, want 504", r.StatusCode)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
	h.idle()
	if got := h.metric(metrics.ProxyErrorsTotal, metrics.LabelCause, metrics.CauseBackendTimeout); got != 1 {
		t.Errorf("errors{backend_timeout} = %v, want 1", got)
	}
}

func TestStalePooledConnectionIsRetriedForIdempotentRequests(t *testing.T) {
	h := newHarness(t)
	b := newBackend(t, "b")
	b.handler = func(w io.Writer, r *http.Request, body []byte) bool {
		io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		return false // closes the kept-alive connection right after
	}
	h.route(to(b.addr))
	c := h.dial()
	for i := 0; i < 3; i++ {
		if r := c.roundTrip(get("a", "/")); r.StatusCode != 200 {
			t.Fatalf("GET %d: %d", i, r.StatusCode)
		}
	}
	r := c.roundTrip("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx")
	if r.StatusCode != 200 {
		t.Fatalf("POST: %d, want 200: a pooled connection is probed before a request that cannot be replayed", r.StatusCode)
	}
	if n := len(b.got()); n != 4 {
		t.Errorf("backend processed %d requests, want 4 (each exactly once)", n)
	}
}

func TestBackendFailingMidBodyCutsTheResponse(t *testing.T) {
	h := newHarness(t)
	b := newBackend(t, "b")
	b.handler = func(w io.Writer, r *http.Request, body []byte) bool {
		io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part")
		return false
	}
	h.route(to(b.addr))
	c := h.dial()
	c.send(get("a", "/"))
	if _, err := c.tryRead("GET"); err == nil {
		t.Fatal("a truncated body was read as complete")
	}
	h.idle()
	if got := h.metric(metrics.ProxyErrorsTotal, metrics.LabelCause, metrics.CauseBackendAborted); got != 1 {
		t.Errorf("errors{backend_aborted} = %v, want 1", got)
	}
}

func TestBackendGoneDrainsLinkedRequests(t *testing.T) {
	h := newHarness(t)
	entered := make(chan struct{}, 1)
	b := newRawBackend(t, func(b *backend, c net.Conn) {
		http.ReadRequest(bufio.NewReader(c))
		entered <- struct{}{}
		io.Copy(io.Discard, c) // hangs until the proxy drops it
	})
	h.route(to(b.addr))
	c := h.dial()
	c.send(get("a", "/"))
	<-entered
	h.route() // the endpoint leaves the table: BackendGone, drain at once (grace 0)
	r := c.read("GET")
	if r.StatusCode != 502 {
		t.Fatalf("status %d, want 502", r.StatusCode)
	}
	h.idle()
	if got := h.metric(metrics.ProxyErrorsTotal, metrics.LabelCause, metrics.CauseBackendGone); got != 1 {
		t.Errorf("errors{backend_gone} = %v, want 1", got)
	}
}
