package proxy

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"golang.org/x/net/http2"
)

func TestH2ForwardsRequestsToHTTP1Backend(t *testing.T) {
	h := newHarness(t)
	b := newBackend(t, "b1")
	h.route(to(b.addr))
	c := h.h2Client()
	resp, body := h2Do(t, c, h2Req(t, h, "GET", "app.example", "/x?q=1", nil))
	if resp.StatusCode != 200 || body != "b1" || resp.ProtoMajor != 2 {
		t.Fatalf("got %d %q proto %s", resp.StatusCode, body, resp.Proto)
	}
	if resp.Header.Get("X-Backend") != "b1" || resp.Header.Get("Server") != "kakehi" {
		t.Fatalf("headers %v", resp.Header)
	}
	got := b.got()
	if len(got) != 1 {
		t.Fatalf("backend saw %d requests", len(got))
	}
	r := got[0]
	if r.method != "GET" || r.target != "/x?q=1" || r.host != "app.example" || r.proto != "HTTP/1.1" {
		t.Fatalf("backend saw %+v", r)
	}
	if r.header.Get("X-Forwarded-Proto") != "http" || r.header.Get("X-Forwarded-For") != "127.0.0.1" || r.header.Get("X-Request-Id") == "" {
		t.Fatalf("forwarded headers %v", r.header)
	}
	h.idle()
	if !strings.Contains(h.log.String(), `"proto":"HTTP/2.0"`) {
		t.Fatalf("access log: %s", h.log.String())
	}
}

func TestH2RequestBodies(t *testing.T) {
	h := newHarness(t)
	b := newBackend(t, "b1")
	b.handler = func(w io.Writer, r *http.Request, body []byte) bool {
		fmt.Fprintf(w, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		return true
	}
	h.route(to(b.addr))
	c := h.h2Client()
	big := strings.Repeat("0123456789abcdef", 20000) // 320 KB: many windows
	tests := []struct {
		name   string
		body   string
		length bool
	}{
		{"small with length", "hello", true},
		{"small chunked", "hello", false},
		{"large with length", big, true},
		{"large chunked", big, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var rd io.Reader = strings.NewReader(tc.body)
			if !tc.length {
				rd = io.MultiReader(rd) // hides the length
			}
			resp, body := h2Do(t, c, h2Req(t, h, "POST", "a", "/up", rd))
			if resp.StatusCode != 200 || body != tc.body {
				t.Fatalf("status %d, echoed %d bytes, want %d", resp.StatusCode, len(body), len(tc.body))
			}
		})
	}
}

func TestH2LargeResponsesRespectFlowControl(t *testing.T) {
	h := newHarness(t)
	big := bytes.Repeat([]byte("z"), 1<<20)
	tests := []struct {
		name string
		head string
	}{
		{"content-length", fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", len(big))},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newBackend(t, "big")
			b.handler = func(w io.Writer, r *http.Request, _ []byte) bool {
				io.WriteString(w, tc.head)
				if strings.Contains(tc.head, "chunked") {
					for i := 0; i < len(big); i += 100000 {
						p := big[i:min(i+100000, len(big))]
						fmt.Fprintf(w, "%x\r\n%s\r\n", len(p), p)
					}
					io.WriteString(w, "0\r\n\r\n")
				} else {
					w.Write(big)
				}
				return true
			}
			h.route(to(b.addr))
			resp, body := h2Do(t, h.h2Client(), h2Req(t, h, "GET", "a", "/big", nil))
			if resp.StatusCode != 200 || body != string(big) {
				t.Fatalf("status %d, %d bytes", resp.StatusCode, len(body))
			}
		})
	}
}

func TestH2LocalAnswers(t *testing.T) {
	h := newHarness(t)
	h.route(rule{host: "known", path: "/", service: "web", addrs: []string{closedAddr(t)}})
	c := h.h2Client()
	tests := []struct {
		host, path string
		status     int
	}{
		{"unknown", "/", 404},
		{"known", "/", 503},
		{"known", "/a/../b", 400},
	}
	for _, tc := range tests {
		resp, _ := h2Do(t, c, h2Req(t, h, "GET", tc.host, tc.path, nil))
		if resp.StatusCode != tc.status {
			t.Errorf("%s%s: %d, want %d", tc.host, tc.path, resp.StatusCode, tc.status)
		}
	}
}

// TestH2MalformedRequestsAreResetAndNotForwarded pins RFC 9113 §8.1.1,
// §8.2 and §8.3: each is a stream error PROTOCOL_ERROR and the backend
// sees nothing.
func TestH2MalformedRequestsAreResetAndNotForwarded(t *testing.T) {
	h := newHarness(t)
	b := newBackend(t, "b")
	h.route(to(b.addr))
	base := func(extra ...string) []string { return append(getFields("/"), extra...) }
	tests := []struct {
		name   string
		fields []string
		end    bool
	}{
		{"connection header", base("connection", "close"), true},
		{"keep-alive header", base("keep-alive", "1"), true},
		{"proxy-connection header", base("proxy-connection", "x"), true},
		{"transfer-encoding header", base("transfer-encoding", "chunked"), true},
		{"upgrade header", base("upgrade", "websocket"), true},
		{"te not trailers", base("te", "gzip"), true},
		{"uppercase name", base("X-Upper", "1"), true},
		{"CR in value", base("x-a", "a\rb"), true},
		{"LF in value", base("x-a", "a\nb"), true},
		{"NUL in value", base("x-a", "a\x00b"), true},
		{"missing method", []string{":scheme", "http", ":authority", "a", ":path", "/"}, true},
		{"missing path", []string{":method", "GET", ":scheme", "http", ":authority", "a"}, true},
		{"empty path", []string{":method", "GET", ":scheme", "http", ":authority", "a", ":path", ""}, true},
		{"duplicate path", base(":path", "/"), true},
		{"unknown pseudo", base(":foo", "x"), true},
		{"response pseudo", base(":status", "200"), true},
		{"pseudo after regular", []string{":method", "GET", ":scheme", "http", "x-a", "1", ":authority", "a", ":path", "/"}, true},
		{"CONNECT with path", []string{":method", "CONNECT", ":authority", "a:443", ":path", "/"}, true},
		{"authority disagrees with host", base("host", "b"), true},
		{"content-length without data", base("content-length", "5"), true},
		{"no authority", []string{":method", "GET", ":scheme", "http", ":path", "/"}, true},
	}
	c := h.dialH2()
	id := uint32(1)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c.headers(id, tc.end, tc.fields...)
			r := c.until(id)
			if !r.gotRST || r.rst != http2.ErrCodeProtocol {
				t.Fatalf("got %+v, want RST_STREAM PROTOCOL_ERROR", r)
			}
			id += 2
		})
	}
	// The connection still works.
	c.headers(id, true, getFields("/ok")...)
	if r := c.until(id); r.status != "200" {
		t.Fatalf("after the errors: %+v", r)
	}
	if n := len(b.got()); n != 1 {
		t.Fatalf("backend saw %d requests, want only the valid one", n)
	}
}

func TestH2ContentLengthMismatchIsReset(t *testing.T) {
	h := newHarness(t)
	b := newBackend(t, "b")
	h.route(to(b.addr))
	tests := []struct {
		name  string
		cl    string
		parts []string
	}{
		{"short", "10", []string{"abc"}},
		{"long", "2", []string{"abc"}},
		{"long in two frames", "4", []string{"abc", "de"}},
	}
	c := h.dialH2()
	id := uint32(1)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fields := []string{":method", "POST", ":scheme", "http", ":authority", "a", ":path", "/", "content-length", tc.cl}
			c.headers(id, false, fields...)
			for i, p := range tc.parts {
				if err := c.fr.WriteData(id, i == len(tc.parts)-1, []byte(p)); err != nil {
					t.Fatal(err)
				}
			}
			r := c.until(id)
			if !r.gotRST || r.rst != http2.ErrCodeProtocol {
				t.Fatalf("got %+v, want RST_STREAM PROTOCOL_ERROR", r)
			}
			id += 2
		})
	}
}
