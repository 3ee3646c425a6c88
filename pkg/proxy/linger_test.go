package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestErrorAnswerSurvivesAClientStillSending: the proxy answers 413 while
// the client is still sending a chunked body, and the client keeps
// writing; the client must still read the 413 and the backend see nothing.
// (On loopback the answer usually survives even a plain close; the
// lingering itself is pinned by TestLingerCloseLetsTheClientFinish...)
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

// TestLingerCloseLetsTheClientFinishAndSeeAnOrderlyEnd: a server socket
// that still holds unread request bytes, after its answer, is closed with
// lingerClose: the client reads the answer, may keep writing, and then
// reads an orderly end (FIN), where a plain Close would have reset the
// connection (ECONNRESET) and could destroy the answer in flight.
func TestLingerCloseLetsTheClientFinishAndSeeAnOrderlyEnd(t *testing.T) {
	for _, tc := range []struct {
		name   string
		close  func(net.Conn)
		wantOK bool
	}{
		{"lingerClose", func(c net.Conn) { lingerClose(c); c.Close() }, true},
		{"plain Close (control)", func(c net.Conn) { c.Close() }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			cc, err := net.Dial("tcp", l.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer cc.Close()
			sc, err := l.Accept()
			if err != nil {
				t.Fatal(err)
			}
			_ = cc.SetDeadline(time.Now().Add(10 * time.Second))
			body := make([]byte, 64<<10)
			if _, err := cc.Write(body); err != nil { // unread by the server
				t.Fatal(err)
			}
			if _, err := sc.Write([]byte("answer")); err != nil {
				t.Fatal(err)
			}
			closed := make(chan struct{})
			go func() { tc.close(sc); close(closed) }()
			got := make([]byte, 6)
			if _, err := io.ReadFull(cc, got); err != nil {
				t.Fatalf("answer lost: %v", err)
			}
			_, werr := cc.Write(body)
			_, rerr := cc.Read(got)
			ok := werr == nil && rerr == io.EOF
			if ok != tc.wantOK {
				t.Errorf("write err %v, read err %v: orderly end = %v, want %v", werr, rerr, ok, tc.wantOK)
			}
			cc.Close()
			<-closed
		})
	}
}
