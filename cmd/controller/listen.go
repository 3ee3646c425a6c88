package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/kakehi/kakehi/pkg/proxy"
)

// listen opens a TCP listener on addr, or adopts an inherited socket when
// addr is "fd:N" (socket activation, and how the demo hands a host-side
// listener to a proxy inside a network namespace).
func listen(addr string) (net.Listener, error) {
	if rest, ok := strings.CutPrefix(addr, "fd:"); ok {
		fd, err := strconv.Atoi(rest)
		if err != nil || fd < 3 {
			return nil, fmt.Errorf("listener %q: fd must be a number ≥ 3", addr)
		}
		f := os.NewFile(uintptr(fd), "listener-"+rest)
		defer f.Close()
		l, err := net.FileListener(f)
		if err != nil {
			return nil, fmt.Errorf("listener %q: %w", addr, err)
		}
		return l, nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening on %q: %w", addr, err)
	}
	return l, nil
}

// drainer runs the proxy beside the manager and orders a graceful stop:
// on the signal /readyz fails first, the proxy keeps accepting for delay,
// then stops accepting and lets in-flight requests finish for up to grace,
// and only then is the manager (watches, leader election) stopped.
type drainer struct {
	srv      *proxy.Server
	delay    time.Duration
	grace    time.Duration
	draining atomic.Bool
}

// readyCheck fails once draining has begun.
func (d *drainer) readyCheck(*http.Request) error {
	if d.draining.Load() {
		return errors.New("shutting down")
	}
	return nil
}

// run serves plain HTTP on l and TLS on tl (nil: none) until ctx ends,
// then drains both; it returns the first error of the proxy or the manager.
func (d *drainer) run(ctx context.Context, mgr ctrl.Manager, l, tl net.Listener) error {
	mgrCtx, stopMgr := context.WithCancel(context.Background())
	defer stopMgr()
	mgrErr := make(chan error, 1)
	go func() { mgrErr <- mgr.Start(mgrCtx) }()
	srvErr := make(chan error, 2)
	go func() { srvErr <- d.srv.Serve(l) }()
	if tl != nil {
		go func() { srvErr <- d.srv.ServeTLS(tl) }()
	}

	select {
	case err := <-mgrErr:
		_ = d.srv.Close()
		return err
	case err := <-srvErr:
		stopMgr()
		return errors.Join(err, <-mgrErr)
	case <-ctx.Done():
	}
	log := ctrl.Log.WithName("shutdown")
	d.draining.Store(true)
	log.Info("draining: /readyz fails, still accepting", "delay", d.delay)
	select {
	case <-time.After(d.delay):
	case err := <-srvErr:
		stopMgr()
		return errors.Join(err, <-mgrErr)
	}
	log.Info("stopping the listeners; in-flight requests drain", "grace", d.grace)
	graceCtx, cancel := context.WithTimeout(context.Background(), d.grace)
	defer cancel()
	err := d.srv.Shutdown(graceCtx)
	if errors.Is(err, context.DeadlineExceeded) {
		log.Info("grace period over: closing remaining connections")
		err = d.srv.Close()
	}
	stopMgr()
	return errors.Join(err, <-mgrErr)
}

// listenTLS opens the HTTPS listener (nil when addr is empty) and returns
// the port for HTTP→HTTPS redirects: port when set, else the listener's.
func listenTLS(addr string, port int) (net.Listener, int, error) {
	if addr == "" {
		return nil, port, nil
	}
	l, err := listen(addr)
	if err != nil {
		return nil, 0, err
	}
	if a, ok := l.Addr().(*net.TCPAddr); ok && port == 0 {
		port = a.Port
	}
	return l, port, nil
}
