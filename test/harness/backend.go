package harness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// Echo is what a backend pod answers: who it is and what it received.
type Echo struct {
	Service string              `json:"service"`
	Pod     string              `json:"pod"`
	Method  string              `json:"method"`
	Path    string              `json:"path"`
	Query   string              `json:"query,omitempty"`
	Host    string              `json:"host"`
	Headers map[string][]string `json:"headers"`
	Body    string              `json:"body,omitempty"`
}

// Pod is a backend "pod": a real HTTP server on its own address that
// answers every request with an Echo, after the delay given by a ?sleep=
// query parameter (a Go duration, at most 30 s) when there is one. A
// ?status=CODE parameter (200 to 599) makes it answer with that status
// instead of 200, still with its Echo; with ?statuspod=NAME too, only the
// pod named NAME does.
type Pod struct {
	Service string
	Name    string
	IP      string
	Port    int
	hits    atomic.Int64
	srv     *http.Server
	l       net.Listener
}

// StartPod starts a pod named name of service svc listening on ip:port.
func StartPod(svc, name, ip string, port int) (*Pod, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	if err != nil {
		return nil, fmt.Errorf("pod %s: %w", name, err)
	}
	p := &Pod{Service: svc, Name: name, IP: ip, Port: port, l: l}
	p.srv = &http.Server{
		Handler:           http.HandlerFunc(p.serve),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       60 * time.Second,
	}
	go func() { _ = p.srv.Serve(l) }()
	return p, nil
}

// Addr returns "ip:port".
func (p *Pod) Addr() string { return p.l.Addr().String() }

// Hits returns how many requests the pod answered.
func (p *Pod) Hits() int64 { return p.hits.Load() }

// maxSleep bounds the ?sleep= delay a request may ask a pod for.
const maxSleep = 30 * time.Second

func (p *Pod) serve(w http.ResponseWriter, r *http.Request) {
	p.hits.Add(1)
	if d, err := time.ParseDuration(r.URL.Query().Get("sleep")); err == nil && d > 0 {
		select {
		case <-time.After(min(d, maxSleep)): // the pod is slow on request
		case <-r.Context().Done():
			return
		}
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	e := Echo{
		Service: p.Service, Pod: p.Name, Method: r.Method, Path: r.URL.Path,
		Query: r.URL.RawQuery, Host: r.Host, Headers: r.Header, Body: string(body),
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Pod", p.Name)
	if code := p.statusFor(r); code != 0 {
		w.WriteHeader(code)
	}
	_ = json.NewEncoder(w).Encode(e)
}

// Stop closes the pod's listener and its connections.
func (p *Pod) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.srv.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		_ = p.srv.Close()
	}
}

// statusFor returns the status asked for by ?status= (and ?statuspod=),
// or 0 for the default 200.
func (p *Pod) statusFor(r *http.Request) int {
	q := r.URL.Query()
	code, err := strconv.Atoi(q.Get("status"))
	if err != nil || code < 200 || code > 599 {
		return 0
	}
	if only := q.Get("statuspod"); only != "" && only != p.Name {
		return 0
	}
	return code
}
