package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proxy is one proxy under test, started and serving.
type proxy interface {
	// addr is the host:port clients send HTTP/1.1 requests to.
	addr() string
	// h2Addr is the host:port that speaks h2c with prior knowledge, or ""
	// when the proxy has none.
	h2Addr() string
	// tlsAddr is the host:port of the TLS listener (ALPN h2 and
	// http/1.1, the run's certificate), or "" when the proxy has none.
	tlsAddr() string
	// pids are the processes whose CPU time and memory are the proxy's
	// (empty for "direct").
	pids() []int
	// stop ends the proxy and everything it started.
	stop()
}

// Listen addresses of the proxies (one runs at a time; distinct ports keep
// their logs and TIME_WAIT sockets apart).
// h2c listens on the port after the HTTP/1.1 one (Kakehi: the same port,
// told apart by the connection preface), TLS on the one after (Kakehi:
// --https-addr, port +3).
const (
	kakehiPort  = 18080 // health +1, metrics +2
	nginxPort   = 18180
	haproxyPort = 18280
)

// proxySetup is how a proxy was started, for the report.
type proxySetup struct {
	Command string `json:"command"`
	Config  string `json:"config,omitempty"`
}

// directProxy is no proxy: wrk talks to the backend itself, which shows
// the throughput cap that CPU 0 puts on every run.
type directProxy struct{}

func (directProxy) addr() string    { return backendAddr }
func (directProxy) h2Addr() string  { return "" }
func (directProxy) tlsAddr() string { return "" }
func (directProxy) pids() []int     { return nil }
func (directProxy) stop()           {}

// nginxProxy is nginx as a reverse proxy: master and one worker on
// proxyCPU.
type nginxProxy struct {
	p *proc
}

func (n *nginxProxy) addr() string    { return "127.0.0.1:" + strconv.Itoa(nginxPort) }
func (n *nginxProxy) h2Addr() string  { return "127.0.0.1:" + strconv.Itoa(nginxPort+1) }
func (n *nginxProxy) tlsAddr() string { return "127.0.0.1:" + strconv.Itoa(nginxPort+2) }

func (n *nginxProxy) pids() []int {
	return append([]int{n.p.pid()}, children(n.p.pid())...)
}

func (n *nginxProxy) stop()         { n.p.stop(syscall.SIGTERM, 10*time.Second) }
func (n *nginxProxy) exited() error { return n.p.exited() }

// nginxProxyConf returns the proxy's configuration. Buffers are 16 KiB
// like HAProxy's tune.bufsize and Kakehi's --proxy-buffer-size; bodies
// stream both ways (no request buffering, never a temp file), and both
// keep-alive sides allow a million requests per connection so that no
// proxy pays for reconnections the others do not make. pool is the
// upstream keepalive; a second server speaks h2c with prior knowledge, and
// with cert (the TLS scenarios) a third speaks TLS (nginxTLSServer).
func nginxProxyConf(dir string, s *settings, nofile, pool int, cert *benchCert) string {
	maxConns := min(nofile-256, s.IdleConns+1000) // preallocated: keep it near the need
	fwd := ""
	mapReqID := ""
	if s.Forwarded {
		mapReqID = `  map $http_x_request_id $bench_request_id { "" $request_id; default $http_x_request_id; }
`
		fwd = `      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Host $host;
      proxy_set_header X-Forwarded-Port $server_port;
      proxy_set_header X-Request-Id $bench_request_id;
`
	}
	return fmt.Sprintf(`# Kakehi bench: nginx as the proxy under test (one worker, pinned with taskset).
daemon off;
master_process on;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/nginx-error.log warn;
events { worker_connections %[2]d; }
http {
  access_log off;
  client_body_temp_path %[1]s/tmp/nginx-body;
  proxy_temp_path %[1]s/tmp/nginx-proxy;
  fastcgi_temp_path %[1]s/tmp/nginx-fastcgi;
  uwsgi_temp_path %[1]s/tmp/nginx-uwsgi;
  scgi_temp_path %[1]s/tmp/nginx-scgi;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  client_max_body_size 2m;
  client_body_buffer_size 16k;
%[3]s  upstream backend {
    server %[4]s;
    keepalive %[5]d;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
  }
  server {
    listen 127.0.0.1:%[6]d backlog=4096;
    location / {
%[7]s    }
  }
  server {
    listen 127.0.0.1:%[8]d http2 backlog=4096;
    location / {
%[7]s    }
  }
%[9]s}
`, dir, maxConns, mapReqID, backendAddr, pool, nginxPort, nginxLocation(fwd), nginxPort+1, nginxTLSServer(cert, fwd))
}

// nginxTLSServer is the TLS server of the TLS scenarios ("" without
// cert): HTTP/1.1 and h2 by ALPN (nginx 1.22 syntax), TLS 1.2 and 1.3, the
// server's cipher order with AES-128-GCM first (Kakehi's choice), session
// cache and tickets on.
func nginxTLSServer(cert *benchCert, fwd string) string {
	if cert == nil {
		return ""
	}
	return fmt.Sprintf(`  server {
    listen 127.0.0.1:%d ssl http2 backlog=4096;
    ssl_certificate %s;
    ssl_certificate_key %s;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_ciphers %s;
    ssl_conf_command Ciphersuites %s;
    ssl_prefer_server_ciphers on;
    ssl_session_cache shared:SSL:10m;
    ssl_session_tickets on;
    location / {
%s    }
  }
`, nginxPort+2, cert.certFile, cert.keyFile, tls12Suites, tls13Suites, nginxLocation(fwd))
}

// nginxLocation is the body of the proxying location of both servers.
func nginxLocation(fwd string) string {
	return `      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
` + fwd + `      proxy_request_buffering off;
      proxy_buffer_size 16k;
      proxy_buffers 4 16k;
      proxy_busy_buffers_size 32k;
      proxy_max_temp_file_size 0;
`
}

// startNginxProxy starts nginx as the proxy on proxyCPU.
func startNginxProxy(ctx context.Context, dir string, s *settings, nofile, pool int, cert *benchCert) (proxy, proxySetup, error) {
	conf := nginxProxyConf(dir, s, nofile, pool, cert)
	path := filepath.Join(dir, "nginx-proxy.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, proxySetup{}, err
	}
	argv := []string{"taskset", "-c", strconv.Itoa(proxyCPU), "nginx", "-p", dir, "-e", filepath.Join(dir, "nginx-error.log"), "-c", path}
	setup := proxySetup{Command: strings.Join(argv, " "), Config: conf}
	p, err := startProc(dir, "nginx-proxy", argv...)
	if err != nil {
		return nil, setup, err
	}
	n := &nginxProxy{p: p}
	if err := checkServes(ctx, n.addr(), p.exited); err != nil {
		n.stop()
		return nil, setup, fmt.Errorf("nginx: %w (log: %s)", err, tailFile(filepath.Join(dir, "nginx-error.log"), 1000))
	}
	return n, setup, nil
}

// haproxyProxy is HAProxy with one thread on proxyCPU.
type haproxyProxy struct {
	p *proc
}

func (h *haproxyProxy) addr() string    { return "127.0.0.1:" + strconv.Itoa(haproxyPort) }
func (h *haproxyProxy) h2Addr() string  { return "127.0.0.1:" + strconv.Itoa(haproxyPort+1) }
func (h *haproxyProxy) tlsAddr() string { return "127.0.0.1:" + strconv.Itoa(haproxyPort+2) }
func (h *haproxyProxy) pids() []int     { return []int{h.p.pid()} }
func (h *haproxyProxy) stop()           { h.p.stop(syscall.SIGTERM, 10*time.Second) }
func (h *haproxyProxy) exited() error   { return h.p.exited() }

// haproxyConf returns HAProxy's configuration: one thread, idle backend
// connections shared by every client (http-reuse always) in a pool the
// size of nginx's keepalive, default 16 KiB buffers, no logging. HAProxy
// reserves two descriptors per connection; where the open-files limit
// cannot cover that for the idle scenario, `no strict-limits` lets it run
// on what it has (the idle clients need no backend connection each). A
// second bind speaks h2c with prior knowledge; with cert (the TLS
// scenarios) a third speaks TLS with ALPN h2,http/1.1, TLS 1.2 and 1.3 and
// the cipher order of the others (HAProxy prefers the server's order by
// default; its session cache and tickets are on by default).
func haproxyConf(s *settings, nofile, pool int, cert *benchCert) string {
	maxConns := min(s.IdleConns+500, nofile-256)
	nofile = min(nofile, 2*maxConns+1000)
	fwd := ""
	if s.Forwarded {
		fwd = `  http-request set-header X-Forwarded-For %[src]
  http-request set-header X-Forwarded-Proto %[ssl_fc,iif(https,http)]
  http-request set-header X-Forwarded-Host %[req.hdr(host)]
  http-request set-header X-Forwarded-Port %[dst_port]
  http-request set-header X-Request-Id %[uuid] unless { req.hdr(x-request-id) -m found }
`
	}
	sslGlobal, sslBind := "", ""
	if cert != nil {
		sslGlobal = fmt.Sprintf("  ssl-default-bind-options ssl-min-ver TLSv1.2\n  ssl-default-bind-ciphers %s\n  ssl-default-bind-ciphersuites %s\n", tls12Suites, tls13Suites)
		sslBind = fmt.Sprintf("  bind 127.0.0.1:%d backlog 4096 ssl crt %s alpn h2,http/1.1\n", haproxyPort+2, cert.pemFile)
	}
	return fmt.Sprintf(`# Kakehi bench: HAProxy as the proxy under test (one thread, pinned with taskset).
global
  nbthread 1
  maxconn %[1]d
  ulimit-n %[6]d
  no strict-limits
  tune.bufsize 16384
%[8]s
defaults
  mode http
  option http-keep-alive
  http-reuse always
  timeout connect 5s
  timeout client 300s
  timeout server 300s
  timeout http-request 10s
  timeout http-keep-alive 300s

frontend bench
  bind 127.0.0.1:%[2]d backlog 4096
  bind 127.0.0.1:%[7]d backlog 4096 proto h2
%[9]s  maxconn %[1]d
%[3]s  default_backend backend

backend backend
  server pod %[4]s pool-max-conn %[5]d
`, maxConns, haproxyPort, fwd, backendAddr, pool, nofile, haproxyPort+1, sslGlobal, sslBind)
}

// startHAProxy starts HAProxy in the foreground on proxyCPU.
func startHAProxy(ctx context.Context, dir string, s *settings, nofile, pool int, cert *benchCert) (proxy, proxySetup, error) {
	conf := haproxyConf(s, nofile, pool, cert)
	path := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, proxySetup{}, err
	}
	argv := []string{"taskset", "-c", strconv.Itoa(proxyCPU), "haproxy", "-db", "-f", path}
	setup := proxySetup{Command: strings.Join(argv, " "), Config: conf}
	p, err := startProc(dir, "haproxy", argv...)
	if err != nil {
		return nil, setup, err
	}
	h := &haproxyProxy{p: p}
	if err := checkServes(ctx, h.addr(), p.exited); err != nil {
		h.stop()
		return nil, setup, fmt.Errorf("haproxy: %w", err)
	}
	return h, setup, nil
}
