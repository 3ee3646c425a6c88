package proxy

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestPipelinedRequestsAreAnsweredInOrder(t *testing.T) {
	h := newHarness(t)
	b := newBackend(t, "b")
	b.handler = func(w io.Writer, r *http.Request, body []byte) bool {
		msg := r.URL.Path + ":" + string(body)
		fmt.Fprintf(w, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(msg), msg)
		return true
	}
	h.route(to(b.addr))
	c := h.dial()
	var all strings.Builder
	var want []string
	for i := 0; i < 10; i++ {
		switch i % 3 {
		case 0:
			all.WriteString(get("a", "/g"+itoa(i)))
			want = append(want, "/g"+itoa(i)+":")
		case 1:
			all.WriteString("POST /p" + itoa(i) + " HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc")
			want = append(want, "/p"+itoa(i)+":abc")
		case 2:
			all.WriteString("POST /c" + itoa(i) + " HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nxy\r\n0\r\n\r\n")
			want = append(want, "/c"+itoa(i)+":xy")
		}
	}
	c.send(all.String()) // all at once: the proxy reads them in one go
	for i, w := range want {
		method := "GET"
		if i%3 != 0 {
			method = "POST"
		}
		if r := c.read(method); r.body != w {
			t.Fatalf("response %d: %q, want %q", i, r.body, w)
		}
	}
	if n := len(b.got()); n != 10 {
		t.Errorf("backend saw %d requests, want 10", n)
	}
}

func TestResponseFraming(t *testing.T) {
	cases := []struct {
		name, method, resp string
		wantBody           string
		wantLen            int64 // Content-Length the client sees, -1 for none
		wantChunked        bool
	}{
		{"HEAD keeps Content-Length, no body", "HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n", "", 1234, false},
		{"204 has no body", "GET", "HTTP/1.1 204 No Content\r\n\r\n", "", 0, false},
		{"304 has no body", "GET", "HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\nETag: \"x\"\r\n\r\n", "", 0, false},
		{"chunked is forwarded chunked", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", "abcde", -1, true},
		{"content-length", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", "hello", 5, false},
		{"HTTP/1.0 backend response", "GET", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", "ok", 2, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			b := newBackend(t, "b")
			b.handler = func(w io.Writer, r *http.Request, body []byte) bool {
				io.WriteString(w, tc.resp)
				return true
			}
			h.route(to(b.addr))
			c := h.dial()
			for i := 0; i < 2; i++ { // twice: the framing must leave both connections usable
				r := c.roundTrip(tc.method + " / HTTP/1.1\r\nHost: a\r\n\r\n")
				if r.body != tc.wantBody || r.ContentLength != tc.wantLen {
					t.Fatalf("body %q length %d, want %q %d", r.body, r.ContentLength, tc.wantBody, tc.wantLen)
				}
				if chunked := len(r.TransferEncoding) > 0; chunked != tc.wantChunked {
					t.Errorf("chunked %v, want %v", chunked, tc.wantChunked)
				}
				if r.ProtoMinor != 1 {
					t.Errorf("status line HTTP/1.%d, want HTTP/1.1", r.ProtoMinor)
				}
			}
			if strings.HasPrefix(tc.resp, "HTTP/1.1") && b.connCount() != 1 {
				t.Errorf("backend connections %d, want 1", b.connCount())
			}
		})
	}
}

func TestChunkedResponseTrailersReachTheClient(t *testing.T) {
	h := newHarness(t)
	b := newBackend(t, "b")
	b.handler = func(w io.Writer, r *http.Request, body []byte) bool {
		io.WriteString(w, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n3\r\nabc\r\n0\r\nX-Sum: 42\r\n\r\n")
		return true
	}
	h.route(to(b.addr))
	r := h.dial().roundTrip(get("a", "/"))
	if r.body != "abc" || r.Trailer.Get("X-Sum") != "42" {
		t.Fatalf("body %q trailer %v", r.body, r.Trailer)
	}
}

func TestChunkedRequestTrailersReachTheBackend(t *testing.T) {
	h := newHarness(t)
	b := newBackend(t, "b")
	h.route(to(b.addr))
	c := h.dial()
	c.send("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n3\r\nabc\r\n")
	c.send("0\r\nX-Sum: 42\r\n\r\n")
	if r := c.read("POST"); r.StatusCode != 200 {
		t.Fatalf("status %d", r.StatusCode)
	}
	got := b.got()[0]
	if got.body != "abc" || got.trailer.Get("X-Sum") != "42" {
		t.Fatalf("backend body %q trailer %v", got.body, got.trailer)
	}
}

func TestCloseDelimitedResponseClosesTheClient(t *testing.T) {
	h := newHarness(t)
	b := newBackend(t, "b")
	b.handler = func(w io.Writer, r *http.Request, body []byte) bool {
		io.WriteString(w, "HTTP/1.1 200 OK\r\n\r\nuntil close")
		return false
	}
	h.route(to(b.addr))
	c := h.dial()
	r := c.roundTrip(get("a", "/"))
	if r.body != "until close" || !r.Close {
		t.Fatalf("body %q close %v", r.body, r.Close)
	}
	c.expectClosed()
}

func TestChunkedResponseIsDecodedForHTTP10Clients(t *testing.T) {
	h := newHarness(t)
	b := newBackend(t, "b")
	b.handler = func(w io.Writer, r *http.Request, body []byte) bool {
		io.WriteString(w, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
		return true
	}
	h.route(to(b.addr))
	c := h.dial()
	c.send("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
	raw, err := io.ReadAll(c.br)
	if err != nil {
		t.Fatal(err)
	}
	s := string(raw)
	if !strings.HasSuffix(s, "\r\n\r\nabcde") || strings.Contains(strings.ToLower(s), "transfer-encoding") || !strings.Contains(s, "Connection: close") {
		t.Fatalf("HTTP/1.0 client got %q", s)
	}
}

func TestLargeBodiesStreamBothWays(t *testing.T) {
	h := newHarness(t)
	b := newBackend(t, "b")
	b.handler = func(w io.Writer, r *http.Request, body []byte) bool {
		fmt.Fprintf(w, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", len(body))
		w.Write(body)
		return true
	}
	h.route(to(b.addr))
	c := h.dial()
	body := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB
	go c.send("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: " + itoa(len(body)) + "\r\n\r\n" + body)
	r := c.read("POST")
	if r.body != body {
		t.Fatalf("echoed %d bytes, want %d (equal content)", len(r.body), len(body))
	}
	// The same again, chunked, to check the pump and the chunk validator.
	var chunked strings.Builder
	for i := 0; i < len(body); i += 5000 {
		part := body[i:min(i+5000, len(body))]
		fmt.Fprintf(&chunked, "%x\r\n%s\r\n", len(part), part)
	}
	chunked.WriteString("0\r\n\r\n")
	go c.send("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked.String())
	if r := c.read("POST"); r.body != body {
		t.Fatalf("chunked: echoed %d bytes, want %d", len(r.body), len(body))
	}
}
