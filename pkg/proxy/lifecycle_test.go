package proxy

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// TestLifecycleDrainsInOrder: after the signal, Draining is true at once
// while the listener still accepts; after the delay the listener closes; a
// request in flight finishes during the grace with Connection: close; the
// companion stops only after the Server is done.
func TestLifecycleDrainsInOrder(t *testing.T) {
	h := newHarness(t)
	slow := startBackend(t, "slow", func(b *backend, c net.Conn) { b.httpLoop(c) })
	release := make(chan struct{})
	slow.handler = func(w io.Writer, r *http.Request, body []byte) bool {
		<-release
		return slow.answerName(w, r, body)
	}
	h.route(to(slow.addr))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var serverDoneFirst atomic.Bool
	compStopped := make(chan struct{})
	lc := &Lifecycle{Server: h.srv, Plain: l, Delay: 300 * time.Millisecond, Grace: 5 * time.Second,
		Companion: func(ctx context.Context) error {
			<-ctx.Done()
			// The Server is done: its listener refuses, and the slow
			// request it waited for was released.
			_, dialErr := net.Dial("tcp", l.Addr().String())
			select {
			case <-release:
				serverDoneFirst.Store(dialErr != nil)
			default:
			}
			close(compStopped)
			return nil
		}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- lc.Run(ctx) }()

	nc, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
	c := &client{t: t, nc: nc, br: bufio.NewReader(nc)}
	c.send(get("a", "/slow"))
	waitFor(t, "request at the backend", 5*time.Second, func() bool { return len(slow.got()) == 1 })
	cancel()
	waitFor(t, "draining", time.Second, lc.Draining)
	if nc, err := net.Dial("tcp", l.Addr().String()); err != nil { // still accepting during Delay
		t.Errorf("listener refused during the delay: %v", err)
	} else {
		nc.Close()
	}
	waitFor(t, "listener closed after the delay", 5*time.Second, func() bool {
		nc, err := net.Dial("tcp", l.Addr().String())
		if err == nil {
			nc.Close()
		}
		return err != nil
	})
	close(release) // the in-flight request may finish now, during the grace
	if r := c.read("GET"); r.StatusCode != 200 || !r.Close {
		t.Errorf("in-flight request: %d, close %v; want 200 with Connection: close", r.StatusCode, r.Close)
	}
	if err := <-done; err != nil && err != ErrServerClosed {
		t.Errorf("Run: %v", err)
	}
	<-compStopped
	if !serverDoneFirst.Load() {
		t.Error("the companion stopped before the Server had shut down")
	}
}

func TestListenAcceptsOnlyValidFileDescriptors(t *testing.T) {
	for _, addr := range []string{"fd:x", "fd:1", "fd:-3"} {
		if _, err := Listen(addr); err == nil {
			t.Errorf("Listen(%q) succeeded", addr)
		}
	}
	l, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
}
