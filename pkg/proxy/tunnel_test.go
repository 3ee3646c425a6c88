package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kakehi/kakehi/pkg/metrics"
)

// echoTunnelBackend accepts an upgrade and then echoes every byte.
func echoTunnelBackend(b *backend, c net.Conn) {
	br := bufio.NewReader(b.recorder(c))
	r, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	if r.Header.Get("Upgrade") != "websocket" || r.Header.Get("Connection") != "Upgrade" {
		io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
		return
	}
	io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	io.Copy(c, br)
	c.(*net.TCPConn).CloseWrite()
}

const upgradeRequest = "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: x\r\n\r\n"

func TestUpgradeTunnelEchoes(t *testing.T) {
	h := newHarness(t)
	b := newRawBackend(t, echoTunnelBackend)
	h.route(to(b.addr))
	c := h.dial()
	c.send(upgradeRequest + "early")
	r, err := http.ReadResponse(c.br, nil)
	if err != nil || r.StatusCode != 101 {
		t.Fatalf("response %v %v", r, err)
	}
	if r.Header.Get("Upgrade") != "websocket" || r.Header.Get("Connection") != "Upgrade" {
		t.Errorf("101 fields %v", r.Header)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(c.br, buf); err != nil || string(buf) != "early" {
		t.Fatalf("echo of bytes sent with the request: %q %v", buf, err)
	}
	// The stream stays linked for the tunnel's life.
	if got := h.metric(metrics.ActiveRequests); got != 1 {
		t.Errorf("active requests during the tunnel = %v, want 1", got)
	}
	tok := h.reg.Lookup(b.addr).Token()
	if n := h.srv.Pool().Index().Len(tok); n != 1 {
		t.Errorf("streams linked to the backend during the tunnel = %d, want 1", n)
	}
	for i := 0; i < 3; i++ {
		msg := strings.Repeat("m", 1000*(i+1))
		c.send(msg)
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(c.br, got); err != nil || string(got) != msg {
			t.Fatalf("echo %d: %v", i, err)
		}
	}
	c.nc.(*net.TCPConn).CloseWrite()
	c.expectClosed()
	h.idle()
	if n := h.srv.Pool().Index().Len(tok); n != 0 {
		t.Errorf("streams linked after the tunnel = %d", n)
	}
	if l := h.logLines(1)[0]; l["status"].(float64) != 101 || l["bytes_in"].(float64) != 6005 {
		t.Errorf("log %v: want status 101 and 6005 bytes in", l)
	}
}

func TestUpgradeTunnelEndsWhenTheBackendLeaves(t *testing.T) {
	h := newHarness(t)
	b := newRawBackend(t, echoTunnelBackend)
	h.route(to(b.addr))
	c := h.dial()
	c.send(upgradeRequest)
	if r, err := http.ReadResponse(c.br, nil); err != nil || r.StatusCode != 101 {
		t.Fatalf("response %v %v", r, err)
	}
	h.route() // the endpoint leaves: drained at once
	c.expectClosed()
	h.idle()
	if got := h.metric(metrics.ProxyErrorsTotal, metrics.LabelCause, metrics.CauseBackendGone); got != 1 {
		t.Errorf("errors{backend_gone} = %v, want 1", got)
	}
}

func TestUpgradeTunnelIdleTimeout(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.TunnelIdleTimeout = 100 * time.Millisecond })
	b := newRawBackend(t, echoTunnelBackend)
	h.route(to(b.addr))
	c := h.dial()
	c.send(upgradeRequest)
	if r, err := http.ReadResponse(c.br, nil); err != nil || r.StatusCode != 101 {
		t.Fatalf("response %v %v", r, err)
	}
	c.expectClosed()
}

func TestH2CUpgradeIsNotTunnelled(t *testing.T) {
	h := newHarness(t)
	b := newBackend(t, "b")
	h.route(to(b.addr))
	r := h.dial().roundTrip("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n")
	if r.StatusCode != 200 {
		t.Fatalf("status %d", r.StatusCode)
	}
	got := b.got()[0].header
	if got.Get("Upgrade") != "" || got.Get("Http2-Settings") != "" || got.Get("Connection") != "" {
		t.Errorf("h2c upgrade fields reached the backend: %v", got)
	}
}
