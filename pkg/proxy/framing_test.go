package proxy

import (
	"bufio"
	"io"
	"net/http"
	"strings"
	"testing"
)

// backendRequests parses raw with net/http's parser and returns every
// request in it; it fails the test on bytes that are not well-formed
// requests.
func backendRequests(t *testing.T, raw string) []recorded {
	t.Helper()
	br := bufio.NewReader(strings.NewReader(raw))
	var out []recorded
	for {
		if _, err := br.Peek(1); err == io.EOF {
			return out
		}
		r, err := http.ReadRequest(br)
		if err != nil {
			t.Fatalf("backend received bytes that are not a well-formed request: %v\n%q", err, raw)
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Fatalf("backend received a malformed body: %v\n%q", err, raw)
		}
		out = append(out, recorded{method: r.Method, target: r.RequestURI, host: r.Host, header: r.Header, trailer: r.Trailer, body: string(body)})
	}
}

// TestAcceptedRequestsReachTheBackendOnce sends valid but unusual framing
// and checks that the backend receives exactly one well-formed request
// with the intended body.
func TestAcceptedRequestsReachTheBackendOnce(t *testing.T) {
	cases := []struct {
		name, raw, body string
	}{
		{"plain GET", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", ""},
		{"content-length body", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", "hello"},
		{"zero content-length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", ""},
		{"chunked body", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", "hello world"},
		{"chunked, any case, OWS", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:  ChUnKeD \r\n\r\n5\r\nhello\r\n0\r\n\r\n", "hello"},
		{"chunk extension", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;name=\"v\"\r\nhello\r\n0\r\n\r\n", "hello"},
		{"chunk size upper-case hex", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n", "0123456789"},
		{"chunked trailers", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n2\r\nhi\r\n0\r\nX-Sum: 42\r\n\r\n", "hi"},
		{"leading empty line", "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", ""},
		{"HTTP/1.0 without Host", "GET / HTTP/1.0\r\n\r\n", ""},
		{"absolute-form", "GET http://a.example/p?q HTTP/1.1\r\nHost: other\r\n\r\n", ""},
		{"tab in value", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\tc\r\n\r\n", ""},
		{"obs-text in value", "GET / HTTP/1.1\r\nHost: a\r\nX-A: caf\xc3\xa9\r\n\r\n", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			b := newBackend(t, "b")
			h.route(to(b.addr))
			c := h.dial()
			c.send(tc.raw)
			r := c.read(strings.SplitN(strings.TrimLeft(tc.raw, "\r\n"), " ", 2)[0])
			if r.StatusCode != 200 {
				t.Fatalf("status %d %q", r.StatusCode, r.body)
			}
			h.idle()
			got := backendRequests(t, b.rawBytes())
			if len(got) != 1 {
				t.Fatalf("backend saw %d requests, want 1:\n%q", len(got), b.rawBytes())
			}
			if got[0].body != tc.body {
				t.Errorf("backend body %q, want %q", got[0].body, tc.body)
			}
		})
	}
}

// TestRejectedRequestsNeverReachTheBackend covers request smuggling and
// RFC 9112 framing errors: each is answered with an error, the connection
// is closed, and the backend receives nothing.
func TestRejectedRequestsNeverReachTheBackend(t *testing.T) {
	const smuggled = "GET /admin HTTP/1.1\r\nHost: a\r\n\r\n"
	cases := []struct {
		name, raw string
		status    int
	}{
		{"CL.TE", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled, 400},
		{"TE.CL", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\n" + smuggled + "\r\n0\r\n\r\n", 400},
		{"duplicate CL, same value", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 400},
		{"duplicate CL, different values", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 0\r\n\r\nhello", 400},
		{"CL list", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello", 400},
		{"CL with sign", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nhello", 400},
		{"CL negative", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400},
		{"CL hex", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\nhello", 400},
		{"CL empty", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n", 400},
		{"CL too many digits", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1234567890123456789\r\n\r\n", 400},
		{"TE identity", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", 501},
		{"TE gzip then chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501},
		{"TE chunked not last", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", 400},
		{"TE chunked twice", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"TE look-alike", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", 501},
		{"TE empty element", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: , chunked\r\n\r\n0\r\n\r\n", 400},
		{"TE in HTTP/1.0", "POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"space before colon", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n", 400},
		{"tab before colon", "GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", 400},
		{"obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", 400},
		{"obs-fold TE", "POST / HTTP/1.1\r\nHost: a\r\nX: y\r\n\tTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"bare LF in fields", "GET / HTTP/1.1\nHost: a\n\n", 400},
		{"bare LF after field", "GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", 400},
		{"bare CR in value", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n", 400},
		{"NUL in value", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x00c\r\n\r\n", 400},
		{"control byte in value", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x01c\r\n\r\n", 400},
		{"DEL in value", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x7fc\r\n\r\n", 400},
		{"invalid name char", "GET / HTTP/1.1\r\nHost: a\r\nX(A): b\r\n\r\n", 400},
		{"empty name", "GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n", 400},
		{"no colon", "GET / HTTP/1.1\r\nHost: a\r\nXA\r\n\r\n", 400},
		{"missing Host", "GET / HTTP/1.1\r\n\r\n", 400},
		{"repeated Host", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
		{"Host with userinfo", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 400},
		{"Host with space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
		{"Host bad port", "GET / HTTP/1.1\r\nHost: a:80x\r\n\r\n", 400},
		{"double space in request line", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"lower-case version", "GET / http/1.1\r\nHost: a\r\n\r\n", 400},
		{"HTTP/2.0 request line", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505},
		{"no version", "GET /\r\nHost: a\r\n\r\n", 400},
		{"control in target", "GET /a\x01b HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"non-ASCII target", "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"fragment in target", "GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"dot-dot segment", "GET /public/../admin HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"encoded dot-dot", "GET /public/%2e%2E/admin HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"trailing dot", "GET /public/. HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"backslash", "GET /public\\..\\admin HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"invalid method", "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"asterisk with GET", "GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"CONNECT", "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", 501},
		{"unknown expectation", "GET / HTTP/1.1\r\nHost: a\r\nExpect: teapot\r\n\r\n", 417},
		{"invalid chunk size", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", 400},
		{"chunk size overflow", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000005\r\nhello\r\n0\r\n\r\n", 400},
		{"negative chunk size", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n", 400},
		{"space before chunk size", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n 5\r\nhello\r\n0\r\n\r\n", 400},
		{"chunk size then space", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n", 400},
		{"chunk without CRLF after data", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloX\r\n0\r\n\r\n", 400},
		{"chunk bare LF", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n", 400},
		{"chunk extension with CTL", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a\x01\r\nhello\r\n0\r\n\r\n", 400},
		{"trailer obs-fold", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: a\r\n b\r\n\r\n", 400},
		{"trailer without colon", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nXA\r\n\r\n", 400},
	}
	h := newHarness(t)
	b := newBackend(t, "b")
	h.route(to(b.addr))
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := h.dial()
			c.send(tc.raw)
			method, _, _ := strings.Cut(tc.raw, " ")
			r := c.read(method)
			if r.StatusCode != tc.status {
				t.Errorf("status %d, want %d", r.StatusCode, tc.status)
			}
			if !r.Close {
				t.Errorf("response lacks Connection: close")
			}
			c.expectClosed()
		})
	}
	h.idle()
	if raw := b.rawBytes(); raw != "" || b.connCount() != 0 {
		t.Fatalf("backend received %d connections and bytes %q; want none", b.connCount(), raw)
	}
}
