package proxy

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestErrorAnswerSurvivesAClientStillSending: the proxy answers 413 while
// the client is still sending a chunked body, and the client keeps
// writing after the answer; the client must still read the 413 (lingering
// close), not a reset that destroys it.
func TestErrorAnswerSurvivesAClientStillSending(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.MaxRequestBody = 1000 })
	be := newBackend(t, "web")
	h.route(to(be.addr))
	nc, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	chunk := "800\r\n" + strings.Repeat("x", 0x800) + "\r\n"
	if _, err := nc.Write([]byte("POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	for i := 0; i < 64; i++ { // the client has not noticed and keeps sending
		if _, err := nc.Write([]byte(chunk)); err != nil {
			break
		}
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("the 413 was lost: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413", resp.StatusCode)
	}
	if len(be.got()) != 0 {
		t.Errorf("the backend saw %d requests", len(be.got()))
	}
}
