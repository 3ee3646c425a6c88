package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kakehi/kakehi/test/harness"
)

// The backend: one nginx worker on loadCPU, on a pod-like address that
// EndpointSlice validation accepts.
var (
	backendIP   = harness.PodIP(0, 0) // 198.18.1.1
	backendPort = 8080
	backendAddr = net.JoinHostPort(backendIP, strconv.Itoa(backendPort))
)

// Body sizes served and accepted by the backend.
const (
	smallBody  = 43
	bigBody    = 1 << 20
	uploadBody = 1 << 20
)

// uploadReply is what the backend answers to an upload, once it has read
// the whole body.
const uploadReply = "ok\n"

// backendConf is the backend's nginx configuration. /small and /big are
// static files (sendfile). /upload reads the whole body into memory before
// answering: the mirror module reads the request body before it creates
// its (cheap, internal) subrequest, then the static handler refuses POST
// with 405, which error_page turns into a 200 from a named location. A
// plain `return 200` would answer before the body has arrived and let the
// proxy see an early response instead of an upload.
func backendConf(dir string) string {
	return fmt.Sprintf(`# Kakehi bench: the backend every proxy forwards to.
daemon off;
master_process on;
worker_processes 1;
pid %[1]s/backend.pid;
error_log %[1]s/backend-error.log warn;
events { worker_connections 30000; }
http {
  access_log off;
  client_body_temp_path %[1]s/tmp/body;
  proxy_temp_path %[1]s/tmp/proxy;
  fastcgi_temp_path %[1]s/tmp/fastcgi;
  uwsgi_temp_path %[1]s/tmp/uwsgi;
  scgi_temp_path %[1]s/tmp/scgi;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  sendfile on;
  tcp_nopush on;
  server {
    listen %[2]s backlog=4096;
    root %[1]s/www;
    location = /small { default_type text/plain; }
    location = /big { default_type application/octet-stream; }
    location = /upload {
      client_max_body_size 2m;
      client_body_buffer_size 2m;
      mirror /_sink;
      error_page 405 =200 @uploaded;
    }
    location = /_sink { internal; return 204; }
    location = /_status { stub_status; }
    location @uploaded { default_type text/plain; return 200 %[3]q; }
  }
}
`, dir, backendAddr, uploadReply)
}

// startBackend writes the backend's files under dir and starts nginx on
// loadCPU. It returns the process, the command line and the config.
func startBackend(ctx context.Context, dir string) (*proc, string, string, error) {
	if err := writeBackendFiles(dir); err != nil {
		return nil, "", "", err
	}
	conf := backendConf(dir)
	path := filepath.Join(dir, "backend.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, "", "", err
	}
	argv := []string{"taskset", "-c", strconv.Itoa(loadCPU), "nginx", "-p", dir, "-e", filepath.Join(dir, "backend-error.log"), "-c", path}
	p, err := startProc(dir, "backend", argv...)
	if err != nil {
		return nil, "", "", err
	}
	if err := checkServes(ctx, backendAddr, p.exited); err != nil {
		p.stop(syscall.SIGTERM, 5*time.Second)
		return nil, "", "", fmt.Errorf("backend: %w (log: %s)", err, tailFile(filepath.Join(dir, "backend-error.log"), 1000))
	}
	return p, strings.Join(argv, " "), conf, nil
}

// writeBackendFiles creates the static bodies and the temp folders.
func writeBackendFiles(dir string) error {
	for _, d := range []string{"www", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	small := []byte(strings.Repeat("k", smallBody-1) + "\n")
	big := make([]byte, bigBody)
	for i := range big {
		big[i] = byte('a' + i%26)
	}
	files := map[string][]byte{"small": small, "big": big, "upload": []byte(uploadReply)}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, "www", name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// backendAccepts returns how many connections the backend has accepted
// so far (stub_status), so that a run can show how many backend
// connections each proxy opened: a proxy whose pool churns opens many.
func backendAccepts(ctx context.Context) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+backendAddr+"/_status", nil)
	if err != nil {
		return 0, err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return 0, err
	}
	return parseStubStatus(string(b))
}

// parseStubStatus returns the "accepts" counter of nginx's stub_status
// page.
func parseStubStatus(page string) (int64, error) {
	lines := strings.Split(page, "\n")
	for i, line := range lines {
		if strings.TrimSpace(line) == "server accepts handled requests" && i+1 < len(lines) {
			f := strings.Fields(lines[i+1])
			if len(f) == 3 {
				return strconv.ParseInt(f[0], 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("unexpected stub_status page: %q", page)
}

// httpClient talks only to addresses inside the namespace: no proxy from
// the environment, no compression, bounded time.
var httpClient = &http.Client{
	Transport: &http.Transport{Proxy: nil, DisableCompression: true, MaxIdleConnsPerHost: 4},
	Timeout:   10 * time.Second,
}

// checkOnce sends one request of each kind to addr and checks the answers:
// status 200 and the expected body length.
func checkOnce(ctx context.Context, addr string) error {
	checks := []struct {
		method, path string
		body         []byte
		want         int
	}{
		{"GET", "/small", nil, smallBody},
		{"GET", "/big", nil, bigBody},
		{"POST", "/upload", bytes.Repeat([]byte("u"), uploadBody), len(uploadReply)},
	}
	for _, c := range checks {
		var body io.Reader
		if c.body != nil {
			body = bytes.NewReader(c.body)
		}
		req, err := http.NewRequestWithContext(ctx, c.method, "http://"+addr+c.path, body)
		if err != nil {
			return err
		}
		resp, err := httpClient.Do(req)
		if err != nil {
			return fmt.Errorf("%s %s: %w", c.method, c.path, err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("%s %s: reading the body: %w", c.method, c.path, err)
		}
		if resp.StatusCode != http.StatusOK || n != int64(c.want) {
			return fmt.Errorf("%s %s: status %d, %d body bytes; want 200 and %d", c.method, c.path, resp.StatusCode, n, c.want)
		}
	}
	return nil
}

// checkServes retries checkOnce for up to 30 s, until it passes, exited
// reports that the server's process ended, or ctx ends.
func checkServes(ctx context.Context, addr string, exited func() error) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := checkOnce(ctx, addr)
		if err == nil {
			return nil
		}
		if perr := exited(); perr != nil {
			return perr
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not serving after 30 s: %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
