package proxy

import (
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/kakehi/kakehi/pkg/metrics"
)

// blackholeAddr returns a 127.0.0.1 address whose listen queue is full,
// so that a further connect hangs (the kernel drops its SYNs) until the
// dialler's timeout: a connect timeout without leaving the machine.
func blackholeAddr(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(sa.(*syscall.SockaddrInet4).Port)
	for i := 0; i < 16; i++ { // fill the accept queue
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err != nil {
			return addr
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Skip("could not fill a listen queue to make connects hang")
	return ""
}

func TestConnectTimeoutIs504AndNotRetried(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.BackendConnectTimeout = 100 * time.Millisecond })
	hole := blackholeAddr(t)
	live := newBackend(t, "live")
	h.route(to(hole, live.addr))
	c := h.dial()
	saw504 := false
	for i := 0; i < 2; i++ { // round robin: one of the two starts on the black hole
		r := c.roundTrip(get("a", "/"))
		switch r.StatusCode {
		case 504:
			saw504 = true
		case 200:
		default:
			t.Fatalf("status %d", r.StatusCode)
		}
	}
	if !saw504 {
		t.Fatal("no request went to the black hole")
	}
	h.idle()
	if got := h.metric(metrics.BackendRetriesTotal); got != 0 {
		t.Errorf("retries = %v, want 0: a connect timeout is not retried", got)
	}
	if got := h.metric(metrics.BackendConnectsTotal, metrics.LabelResult, metrics.ConnectTimeout); got != 1 {
		t.Errorf("connects{timeout} = %v, want 1", got)
	}
	if got := h.metric(metrics.ProxyErrorsTotal, metrics.LabelCause, metrics.CauseConnectTimeout); got != 1 {
		t.Errorf("errors{connect_timeout} = %v, want 1", got)
	}
}

func TestClientClosingMidBodyIsNotForwardedAsComplete(t *testing.T) {
	h := newHarness(t)
	b := newRawBackend(t, func(b *backend, c net.Conn) {
		buf := make([]byte, 4096)
		r := b.recorder(c)
		for {
			if _, err := r.Read(buf); err != nil {
				return
			}
		}
	})
	h.route(to(b.addr))
	c := h.dial()
	c.send("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nonly ten b")
	waitFor(t, "the head and partial body at the backend", 5*time.Second, func() bool {
		return len(b.rawBytes()) > 0 && b.rawBytes()[len(b.rawBytes())-1] == 'b'
	})
	c.nc.Close()
	h.idle()
	// The backend connection is closed, not pooled: the backend sees EOF
	// after the partial body and the proxy keeps no idle connection.
	if got := h.metric(metrics.BackendIdleConnections); got != 0 {
		t.Errorf("idle backend connections = %v, want 0", got)
	}
	waitFor(t, "the backend connection to close", 5*time.Second, func() bool {
		return h.metric(metrics.BackendConnections) == 0
	})
	if got := h.metric(metrics.ProxyErrorsTotal, metrics.LabelCause, metrics.CauseClientAborted); got != 1 {
		t.Errorf("errors{client_aborted} = %v, want 1", got)
	}
}
