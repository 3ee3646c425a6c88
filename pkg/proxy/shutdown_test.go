package proxy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"
)

func TestShutdownFinishesInFlightRequestsAndClosesIdleOnes(t *testing.T) {
	h := newHarness(t)
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	b := newBackend(t, "b")
	b.handler = func(w io.Writer, r *http.Request, body []byte) bool {
		if r.URL.Path == "/slow" {
			entered <- struct{}{}
			<-release
		}
		io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		return true
	}
	h.route(to(b.addr))
	idle := h.dial()
	if r := idle.roundTrip(get("a", "/")); r.StatusCode != 200 {
		t.Fatal(r.StatusCode)
	}
	busy := h.dial()
	busy.send(get("a", "/slow"))
	<-entered
	done := make(chan error, 1)
	go func() { done <- h.srv.Shutdown(context.Background()) }()
	idle.expectClosed()
	close(release)
	r := busy.read("GET")
	if r.StatusCode != 200 || !r.Close {
		t.Fatalf("in-flight request: %d close %v, want 200 with Connection: close", r.StatusCode, r.Close)
	}
	busy.expectClosed()
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

func TestShutdownDeadlineClosesWhatIsLeft(t *testing.T) {
	h := newHarness(t)
	b := newRawBackend(t, echoTunnelBackend)
	h.route(to(b.addr))
	c := h.dial()
	c.send(upgradeRequest)
	if r, err := http.ReadResponse(c.br, nil); err != nil || r.StatusCode != 101 {
		t.Fatalf("response %v %v", r, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := h.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v, want the context's deadline error", err)
	}
	c.expectClosed()
}
