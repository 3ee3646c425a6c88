// Package proxy is Kakehi's HTTP/1.1 reverse proxy engine: one goroutine per
// client connection, a strict hand-written parser, heads forwarded as the
// bytes received (edited in place), pooled buffers from pkg/stream and
// keep-alive pools per backend endpoint. HTTP1.md beside this file records
// the protocol decisions (framing, hop-by-hop fields, retries, timeouts).
// The package never imports Kubernetes code.
package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/kakehi/kakehi/pkg/metrics"
	"github.com/kakehi/kakehi/pkg/route"
	"github.com/kakehi/kakehi/pkg/stream"
)

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("proxy: server closed")

// Config is what a Server needs.
type Config struct {
	// Store holds the route table; it is loaded once per request.
	Store *route.Store
	// Metrics receives the proxy's metrics; nil records none.
	Metrics *metrics.Proxy
	// AccessLog receives one JSON line per request, written by a
	// background goroutine; nil disables the access log.
	AccessLog io.Writer
	// Options are the timeouts and limits; zero fields take defaults.
	Options Options
	// TLS configures the HTTPS listener (ServeTLS); see tls.go.
	TLS TLSOptions
}

// Server is an HTTP/1.1 reverse proxy. Create it with New.
type Server struct {
	store    *route.Store
	m        *metrics.Proxy
	opt      Options
	pool     *stream.Pool
	exchange sync.Pool
	backends backendPools
	h2c      h2cPools // HTTP/2 connections to h2c backends, h2up_pool.go
	log      *accessLog
	ids      *idGen

	clientConns atomic.Int64
	shutting    atomic.Bool

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	idleDone  chan struct{} // closed when conns empties during shutdown
	done      chan struct{} // closed by Shutdown or Close
	stopOnce  sync.Once
	bg        sync.WaitGroup // reaper and access-log writer

	tls tlsServer // ServeTLS, see tls.go
}

// New returns a server for cfg. It starts the background goroutines
// (backend pool reaper, access-log writer) that Shutdown or Close stop.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("proxy: Config.Store is required")
	}
	opt, err := cfg.Options.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Server{
		store:     cfg.Store,
		m:         cfg.Metrics,
		opt:       opt,
		ids:       newIDGen(),
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[*conn]struct{}),
		done:      make(chan struct{}),
	}
	if err := s.tls.init(s, cfg.TLS); err != nil {
		return nil, err
	}
	s.backends = backendPools{max: opt.MaxIdleBackendConnsPerEndpoint, idleTimeout: opt.BackendIdleTimeout}
	s.h2c.init(&opt)
	s.exchange.New = func() any { return newExchange(opt.MaxHeaderCount + 1) }
	if cfg.AccessLog != nil {
		s.log = newAccessLog(cfg.AccessLog, opt.AccessLogBuffer, s.m)
		s.bg.Add(1)
		go func() { defer s.bg.Done(); s.log.run(s.done) }()
	}
	s.pool = stream.NewPool(stream.Options{
		MaxStreams:  opt.MaxStreams,
		BufSize:     opt.BufferSize,
		MaxAttempts: max(opt.MaxAttempts, policyMaxAttempts),
		Observer:    observer{s},
	})
	s.m.SetSources(metrics.ProxySources{
		StreamsInUse:     s.pool.InUse,
		StreamsCapacity:  s.pool.Cap,
		ClientConns:      func() int { return int(s.clientConns.Load()) },
		BackendConns:     func() int { return int(s.backends.open.Load() + s.h2c.open.Load()) },
		BackendIdleConns: func() int { return int(s.backends.idle.Load()) },
	})
	s.bg.Add(1)
	go func() { defer s.bg.Done(); s.reapLoop() }()
	return s, nil
}

// Pool returns the stream pool that every request draws from.
func (s *Server) Pool() *stream.Pool { return s.pool }

// Options returns the effective options, defaults applied.
func (s *Server) Options() Options { return s.opt }

// Serve accepts connections on l and serves each on its own goroutine. It
// returns ErrServerClosed after Shutdown or Close, or the first
// non-temporary accept error. Serve closes l when it returns.
func (s *Server) Serve(l net.Listener) error { return s.acceptLoop(l, false) }

// acceptLoop is Serve, and ServeTLS when secure.
func (s *Server) acceptLoop(l net.Listener, secure bool) error {
	if !s.track(l) {
		_ = l.Close()
		return ErrServerClosed
	}
	defer s.untrack(l)
	var backoff time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if s.shutting.Load() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				select {
				case <-time.After(backoff):
				case <-s.done:
				}
				continue
			}
			return err
		}
		backoff = 0
		var w *tlsWire
		if secure {
			w = s.tls.wrap(nc)
			nc = w.tc
		}
		c := newConn(s, nc)
		if !s.addConn(c) {
			_ = nc.Close()
			return ErrServerClosed
		}
		if secure {
			go c.serveTLS(w)
			continue
		}
		go c.serve()
	}
}

func (s *Server) track(l net.Listener) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutting.Load() {
		return false
	}
	s.listeners[l] = struct{}{}
	return true
}

func (s *Server) untrack(l net.Listener) {
	s.mu.Lock()
	delete(s.listeners, l)
	s.mu.Unlock()
	_ = l.Close()
}

func (s *Server) addConn(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutting.Load() {
		return false
	}
	s.conns[c] = struct{}{}
	s.clientConns.Add(1)
	return true
}

func (s *Server) removeConn(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	if len(s.conns) == 0 && s.idleDone != nil {
		close(s.idleDone)
		s.idleDone = nil
	}
	s.mu.Unlock()
	s.clientConns.Add(-1)
}

// Shutdown stops accepting, closes idle connections, lets requests in
// flight finish (their responses carry Connection: close), and returns when
// every connection is closed or ctx is done; in the latter case it closes
// what is left and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.shutting.Store(true)
	for l := range s.listeners {
		_ = l.Close()
	}
	var wait chan struct{}
	if len(s.conns) > 0 {
		wait = make(chan struct{})
		s.idleDone = wait
	}
	for c := range s.conns {
		c.closeIfIdle()
	}
	s.mu.Unlock()
	if wait != nil {
		select {
		case <-wait:
		case <-ctx.Done():
			s.Close()
			return ctx.Err()
		}
	}
	s.stop()
	return nil
}

// Close closes every listener and connection at once, and stops the
// background goroutines. Requests in flight are cut off.
func (s *Server) Close() error {
	s.mu.Lock()
	s.shutting.Store(true)
	for l := range s.listeners {
		_ = l.Close()
	}
	for c := range s.conns {
		c.forceClose()
	}
	s.mu.Unlock()
	s.stop()
	return nil
}

// stop ends the background goroutines and closes pooled backend
// connections; it runs once.
func (s *Server) stop() {
	s.stopOnce.Do(func() {
		close(s.done)
		s.bg.Wait()
		s.backends.closed.Store(true)
		s.backends.reap(time.Now(), true)
		s.h2c.stop()
	})
}

// reapLoop closes expired idle backend connections until the server stops.
func (s *Server) reapLoop() {
	t := time.NewTicker(max(s.opt.BackendIdleTimeout/2, time.Second))
	defer t.Stop()
	for {
		select {
		case now := <-t.C:
			s.backends.reap(now, false)
			s.h2c.reap(now, false)
		case <-s.done:
			return
		}
	}
}

// BackendGone is called when the registry retires b: its idle pooled
// connections are closed at once, and the requests still linked to it are
// cut off after Options.DrainGrace (through the stream index).
func (s *Server) BackendGone(b *route.Backend) {
	s.backends.retire(b)
	s.h2c.retire(b)
	tok := b.Token()
	drain := func() { s.pool.Index().Drain(tok) }
	if s.opt.DrainGrace <= 0 {
		drain()
		return
	}
	time.AfterFunc(s.opt.DrainGrace, drain)
}
