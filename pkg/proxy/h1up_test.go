package proxy

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/kakehi/kakehi/pkg/route"
)

// echoH2C is an h2c backend that echoes the request body, with its
// content-length when cl is set, and trailers Grpc-Status and X-Req-Sum
// (the request's X-Sum trailer) otherwise.
func echoH2C(t *testing.T, cl bool) *h2cBackend {
	return newH2CBackend(t, 0, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Proto", r.Proto)
		w.Header().Set("X-Te", r.Header.Get("Te"))
		if cl {
			w.Header().Set("Content-Length", itoa(len(body)))
		} else {
			w.Header().Set("Trailer", "Grpc-Status, X-Req-Sum")
		}
		_, _ = w.Write(body)
		if !cl {
			w.(http.Flusher).Flush()
			w.Header().Set("Grpc-Status", "0")
			w.Header().Set("X-Req-Sum", r.Trailer.Get("X-Sum"))
		}
	})
}

// TestH1ToH2CContentLength: an HTTP/1.1 request with content-length goes
// to the h2c backend as HTTP/2; the response keeps its content-length and
// the connection stays usable.
func TestH1ToH2CContentLength(t *testing.T) {
	be := echoH2C(t, true)
	h := newHarness(t)
	h.routeH2C(be.addr)
	c := h.dial()
	for i := 0; i < 3; i++ {
		r := c.roundTrip("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello")
		if r.StatusCode != 200 || r.body != "hello" || r.ContentLength != 5 || r.Header.Get("X-Proto") != "HTTP/2.0" {
			t.Fatalf("got %d %q cl=%d %v", r.StatusCode, r.body, r.ContentLength, r.Header)
		}
	}
	if r := c.roundTrip(get("a", "/y")); r.StatusCode != 200 || r.body != "" || r.ContentLength != 0 {
		t.Fatalf("GET: %d %q %d", r.StatusCode, r.body, r.ContentLength)
	}
	h.idle()
	if n := strings.Count(h.log.String(), "\n"); n != 4 {
		t.Errorf("%d access-log lines, want 4:\n%s", n, h.log.String())
	}
}

// TestH1ToH2CChunkedTrailers: a chunked request body with trailers reaches
// the backend decoded, with its trailers; the response (no length) is
// chunked, with trailers only for a client that sent TE: trailers.
func TestH1ToH2CChunkedTrailers(t *testing.T) {
	be := echoH2C(t, false)
	h := newHarness(t)
	h.routeH2C(be.addr)
	c := h.dial()
	c.send("POST /x HTTP/1.1\r\nHost: a\r\nTE: trailers\r\nTrailer: X-Sum\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"3\r\nabc\r\n")
	c.send("2\r\nde\r\n0\r\nX-Sum: 42\r\n\r\n")
	r := c.read("POST")
	if r.StatusCode != 200 || r.body != "abcde" || len(r.TransferEncoding) != 1 || r.Header.Get("X-Te") != "trailers" {
		t.Fatalf("got %d %q %v %v", r.StatusCode, r.body, r.TransferEncoding, r.Header)
	}
	if r.Trailer.Get("Grpc-Status") != "0" || r.Trailer.Get("X-Req-Sum") != "42" {
		t.Fatalf("trailers %v", r.Trailer)
	}
	r = c.roundTrip("POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\n\r\n")
	if r.StatusCode != 200 || r.body != "z" || len(r.Trailer) != 0 {
		t.Fatalf("without TE: trailers: %d %q trailers %v", r.StatusCode, r.body, r.Trailer)
	}
}

// TestH1ToH2CHTTP10: an HTTP/1.0 client gets a body delimited by the
// connection's close when the backend sent no length.
func TestH1ToH2CHTTP10(t *testing.T) {
	be := echoH2C(t, false)
	h := newHarness(t)
	h.routeH2C(be.addr)
	c := h.dial()
	c.send("POST /x HTTP/1.0\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc")
	r := c.read("POST")
	if r.StatusCode != 200 || r.body != "abc" || r.ContentLength != -1 || len(r.TransferEncoding) != 0 {
		t.Fatalf("got %d %q cl=%d te=%v", r.StatusCode, r.body, r.ContentLength, r.TransferEncoding)
	}
	c.expectClosed()
}

// TestH1ToH2CRetryAndTimeout: status retries and the response-head
// timeout of the route apply to HTTP/1.1 clients of h2c clusters.
func TestH1ToH2CRetryAndTimeout(t *testing.T) {
	bad, good := namedH2C(t, "bad", 503), namedH2C(t, "good", 200)
	h := newHarness(t)
	h.routeProto(route.ProtocolH2C, pol(func(p *route.Policy) { p.MaxAttempts, p.RetryOn = 2, route.RetryStatus503 }), bad.addr, good.addr)
	c := h.dial()
	for i := 0; i < 4; i++ {
		if r := c.roundTrip(get("a", "/")); r.StatusCode != 200 || r.body != "good" {
			t.Fatalf("status retry: %d %q", r.StatusCode, r.body)
		}
	}
	h.routeProto(route.ProtocolH2C, nil, closedAddr(t), good.addr)
	for i := 0; i < 2; i++ {
		if r := h.dial().roundTrip(get("a", "/")); r.StatusCode != 200 {
			t.Fatalf("connect failure retry: %d", r.StatusCode)
		}
	}
	release := make(chan struct{})
	defer close(release)
	slow := newH2CBackend(t, 0, func(w http.ResponseWriter, _ *http.Request) { <-release })
	h.routeProto(route.ProtocolH2C, pol(func(p *route.Policy) { p.RequestTimeout = 200 * 1e6 }), slow.addr)
	if r := h.dial().roundTrip(get("a", "/")); r.StatusCode != 504 {
		t.Fatalf("timeout: %d, want 504", r.StatusCode)
	}
}
