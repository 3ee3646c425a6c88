package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kakehi/kakehi/test/harness"
)

// TestSIGTERMDrainsWithoutFailingAcceptedRequests sends SIGTERM to a
// controller under load with long requests in flight. /readyz must fail
// first; every request the proxy accepted must succeed (the only allowed
// failures are connections refused after the listener closed); the long
// requests finish within the grace period; the process exits.
func TestSIGTERMDrainsWithoutFailingAcceptedRequests(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const class, controller = "kakehi-sigterm", "kakehi.dev/sigterm-test"
	newBackends(t, "sigterm", 2, "drain")
	ing := harness.Ingress("sigterm", "drain", class, harness.Rule("drain.test", harness.Path(prefix, "/", "drain")))
	if err := harness.CreateAll(ctx, env.cp.Client, harness.IngressClass(class, controller, false), ing); err != nil {
		t.Fatal(err)
	}
	c, err := harness.StartController(ctx, harness.ControllerOptions{
		Kubeconfig: env.cp.Kubeconfig, PortBase: 8480,
		Args: []string{"--ingress-class", class, "--controller-name", controller,
			"--shutdown-delay", "1s", "--shutdown-grace", "15s"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	eventually(t, 10*time.Second, func() error {
		r, err := do(c.HTTPAddr, "GET", "drain.test", "/", "")
		if err != nil || r.Echo == nil {
			return fmt.Errorf("not routing yet: %v", err)
		}
		return nil
	})

	var long sync.WaitGroup
	var longOK atomic.Int64
	longErrs := make(chan error, 5)
	for i := 0; i < 5; i++ {
		long.Add(1)
		go func() {
			defer long.Done()
			r, err := do(c.HTTPAddr, "GET", "drain.test", "/slow?sleep=3s", "")
			if err == nil && r.Echo == nil {
				err = errStatus(r)
			}
			if err != nil {
				longErrs <- err
				return
			}
			longOK.Add(1)
		}()
	}
	var accepted, refused, backlog, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var loaders sync.WaitGroup
	var h2accepted atomic.Int64
	for i := 0; i < 3; i++ {
		send := func() (*result, error) { return neverAccepted(httpc, c.HTTPAddr) }
		if i == 2 { // the third client speaks HTTP/2 (h2c), which drains by GOAWAY
			send = func() (*result, error) {
				r, err := neverAccepted(h2c, c.HTTPAddr)
				if err == nil && r.Echo != nil {
					h2accepted.Add(1)
				}
				return r, err
			}
		}
		loaders.Add(1)
		go func() {
			defer loaders.Done()
			for n := 0; n < 100000; n++ {
				select {
				case <-stop:
					return
				default:
				}
				r, err := send()
				switch {
				case errors.Is(err, errNeverAccepted):
					refused.Add(1)
					backlog.Add(1)
				case errors.Is(err, syscall.ECONNREFUSED):
					refused.Add(1)
				case err == nil && r.Echo != nil:
					accepted.Add(1)
				default:
					if err == nil {
						err = errStatus(r)
					}
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
			}
		}()
	}
	eventually(t, 10*time.Second, func() error {
		if accepted.Load() < 200 {
			return fmt.Errorf("only %d requests so far", accepted.Load())
		}
		return nil
	})
	if err := c.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() error {
		resp, err := http.Get("http://" + c.HealthAddr + "/readyz")
		if err != nil {
			return nil // health server already gone: also not ready
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return errors.New("/readyz still 200 after SIGTERM")
		}
		return nil
	})
	long.Wait()
	select {
	case <-c.Done():
	case <-time.After(30 * time.Second):
		t.Error("controller did not exit within shutdown-delay + grace")
	}
	close(stop)
	loaders.Wait()
	close(longErrs)
	for err := range longErrs {
		t.Errorf("long request in flight at SIGTERM failed: %v", err)
	}
	t.Logf("SIGTERM under load: %d accepted requests succeeded (%d over HTTP/2), %d failed, %d refused after the listener closed (%d of them reset in the backlog), %d/5 long requests completed",
		accepted.Load(), h2accepted.Load(), failed.Load(), refused.Load(), backlog.Load(), longOK.Load())
	if h2accepted.Load() == 0 {
		t.Error("the HTTP/2 client got no answer at all")
	}
	if failed.Load() != 0 {
		t.Errorf("%d accepted requests failed (first: %v)", failed.Load(), firstErr.Load())
	}
}

// errNeverAccepted marks a request on a new connection that the kernel
// took into the listen backlog but the proxy never accepted: its listener
// closed first, so the connection was reset before any byte came back. The
// proxy never saw such a request; it counts with the refused ones.
var errNeverAccepted = errors.New("connection reset before the proxy accepted it")

// neverAccepted sends GET drain.test/ with c and reports a failure on a
// fresh connection that got no response byte as errNeverAccepted.
func neverAccepted(c *http.Client, addr string) (*result, error) {
	req, err := http.NewRequest("GET", "http://"+addr+"/", nil)
	if err != nil {
		return nil, err
	}
	req.Host = "drain.test"
	var reused, gotByte atomic.Bool
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		GotConn:              func(info httptrace.GotConnInfo) { reused.Store(info.Reused) },
		GotFirstResponseByte: func() { gotByte.Store(true) },
	}))
	r, err := roundTrip(c, req)
	if err != nil && !reused.Load() && !gotByte.Load() &&
		(errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.ErrUnexpectedEOF)) {
		return nil, fmt.Errorf("%w: %v", errNeverAccepted, err)
	}
	return r, err
}
