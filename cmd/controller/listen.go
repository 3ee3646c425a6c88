package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/manager"

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

// proxyRunnable serves the proxy on a listener for the manager's lifetime.
// It does not need leadership: every replica serves traffic.
type proxyRunnable struct {
	srv *proxy.Server
	l   net.Listener
}

func serveRunnable(srv *proxy.Server, l net.Listener) manager.Runnable {
	return proxyRunnable{srv: srv, l: l}
}

// NeedLeaderElection reports false: the data plane runs on every replica.
func (p proxyRunnable) NeedLeaderElection() bool { return false }

// Start serves until ctx is done, then shuts the proxy down gracefully.
func (p proxyRunnable) Start(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- p.srv.Serve(p.l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return p.srv.Shutdown(sctx)
}
