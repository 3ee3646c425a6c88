package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Listen opens a TCP listener on addr, or adopts an inherited socket when
// addr is "fd:N" (socket activation, and how the demo hands a host-side
// listener to a proxy inside a network namespace).
func Listen(addr string) (net.Listener, error) {
	rest, ok := strings.CutPrefix(addr, "fd:")
	if !ok {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("listening on %q: %w", addr, err)
		}
		return l, nil
	}
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

// Lifecycle runs a Server's listeners beside a companion (the controller's
// manager: watches, leader election) and orders a graceful stop. When Run's
// context ends, Draining turns true at once (so /readyz fails), the
// listeners keep accepting for Delay, then the Server shuts down and
// in-flight requests drain for up to Grace, the rest are closed, and only
// then is the companion stopped, so that routes stay current while
// requests drain.
type Lifecycle struct {
	Server    *Server
	Plain     net.Listener // plain HTTP/1.1 and h2c
	TLS       net.Listener // nil: no TLS listener
	Delay     time.Duration
	Grace     time.Duration
	Companion func(ctx context.Context) error // runs until its ctx ends
	// Log, when set, is told each step of the drain.
	Log func(msg string, keysAndValues ...any)

	draining atomic.Bool
}

// Draining reports whether the drain has begun.
func (lc *Lifecycle) Draining() bool { return lc.draining.Load() }

// Run serves until ctx ends, then drains; it returns the first error of the
// Server or the companion.
func (lc *Lifecycle) Run(ctx context.Context) error {
	compCtx, stopComp := context.WithCancel(context.Background())
	defer stopComp()
	compErr := make(chan error, 1)
	go func() { compErr <- lc.Companion(compCtx) }()
	srvErr := make(chan error, 2)
	go func() { srvErr <- lc.Server.Serve(lc.Plain) }()
	if lc.TLS != nil {
		go func() { srvErr <- lc.Server.ServeTLS(lc.TLS) }()
	}
	select {
	case err := <-compErr:
		_ = lc.Server.Close()
		return err
	case err := <-srvErr:
		stopComp()
		return errors.Join(err, <-compErr)
	case <-ctx.Done():
	}
	lc.draining.Store(true)
	lc.log("draining: /readyz fails, still accepting", "delay", lc.Delay)
	select {
	case <-time.After(lc.Delay):
	case err := <-srvErr:
		stopComp()
		return errors.Join(err, <-compErr)
	}
	lc.log("stopping the listeners; in-flight requests drain", "grace", lc.Grace)
	err := lc.shutdown()
	stopComp()
	return errors.Join(err, <-compErr)
}

// shutdown stops the Server within Grace, then closes what is left.
func (lc *Lifecycle) shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), lc.Grace)
	defer cancel()
	err := lc.Server.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		lc.log("grace period over: closing remaining connections")
		err = lc.Server.Close()
	}
	return err
}

func (lc *Lifecycle) log(msg string, kv ...any) {
	if lc.Log != nil {
		lc.Log(msg, kv...)
	}
}
