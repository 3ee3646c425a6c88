package proxy

import (
	"context"
	"net"
	"testing"
	"time"
)

// TestShutdownServesTheFirstRequestOfAFreshConnection: a connection the
// proxy accepted before Shutdown, whose client has not sent anything yet,
// may still send its first request (within firstRequestGrace) and gets an
// answer with Connection: close rather than a reset: its client could not
// know it should retry.
func TestShutdownServesTheFirstRequestOfAFreshConnection(t *testing.T) {
	h := newHarness(t)
	be := newBackend(t, "web")
	h.route(to(be.addr))
	fresh := h.dial()
	waitFor(t, "connection accepted", 5*time.Second, func() bool { return h.srv.clientConns.Load() >= 1 })
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- h.srv.Shutdown(ctx)
	}()
	waitFor(t, "listener closed", 5*time.Second, func() bool {
		nc, err := net.Dial("tcp", h.addr)
		if err == nil {
			nc.Close()
		}
		return err != nil
	})
	r := fresh.roundTrip(get("a", "/"))
	if r.StatusCode != 200 || !r.Close {
		t.Errorf("first request after Shutdown began: %d close=%v, want 200 with Connection: close", r.StatusCode, r.Close)
	}
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}
