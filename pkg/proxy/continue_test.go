package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
)

// continueBackend answers "100 Continue", reads the body and echoes it.
func continueBackend(b *backend, c net.Conn) {
	br := bufio.NewReader(c)
	for {
		r, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		if r.Header.Get("Expect") == "100-continue" {
			io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\n")
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	}
}

func TestExpectContinueIsRelayed(t *testing.T) {
	h := newHarness(t)
	b := newRawBackend(t, continueBackend)
	h.route(to(b.addr))
	c := h.dial()
	c.send("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
	if r := c.read("PUT"); r.StatusCode != 100 {
		t.Fatalf("first response %d, want 100", r.StatusCode)
	}
	c.send("hello")
	r := c.read("PUT")
	if r.StatusCode != 200 || r.body != "hello" || r.Close {
		t.Fatalf("final %d %q close %v", r.StatusCode, r.body, r.Close)
	}
	// The connection is still good for another request.
	if r := c.roundTrip("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nok"); r.body != "ok" {
		t.Fatalf("next request: %q", r.body)
	}
}

func TestExpectContinueRefusedClosesTheConnection(t *testing.T) {
	h := newHarness(t)
	b := newRawBackend(t, func(b *backend, c net.Conn) {
		if _, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
			io.WriteString(c, "HTTP/1.1 401 Unauthorized\r\nContent-Length: 4\r\n\r\nnope")
			io.Copy(io.Discard, c)
		}
	})
	h.route(to(b.addr))
	c := h.dial()
	c.send("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
	r := c.read("PUT")
	if r.StatusCode != 401 || !r.Close {
		t.Fatalf("got %d close %v, want 401 with Connection: close", r.StatusCode, r.Close)
	}
	c.expectClosed()
}

func TestInterimResponsesAreForwarded(t *testing.T) {
	h := newHarness(t)
	b := newBackend(t, "b")
	b.handler = func(w io.Writer, r *http.Request, body []byte) bool {
		io.WriteString(w, "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		return true
	}
	h.route(to(b.addr))
	c := h.dial()
	c.send(get("a", "/"))
	hint := c.read("GET")
	if hint.StatusCode != 103 || hint.Header.Get("Link") != "</s.css>; rel=preload" {
		t.Fatalf("interim %d %v", hint.StatusCode, hint.Header)
	}
	if hint.Header.Get("Date") != "" || hint.Header.Get("Server") != "" {
		t.Errorf("interim response got Date/Server: %v", hint.Header)
	}
	if r := c.read("GET"); r.StatusCode != 200 || r.body != "ok" {
		t.Fatalf("final %d %q", r.StatusCode, r.body)
	}
}

func TestInterimResponsesAreNotSentToHTTP10Clients(t *testing.T) {
	h := newHarness(t)
	b := newBackend(t, "b")
	b.handler = func(w io.Writer, r *http.Request, body []byte) bool {
		io.WriteString(w, "HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		return true
	}
	h.route(to(b.addr))
	r := h.dial().roundTrip("GET / HTTP/1.0\r\n\r\n")
	if r.StatusCode != 200 || r.body != "ok" {
		t.Fatalf("got %d %q", r.StatusCode, r.body)
	}
}
