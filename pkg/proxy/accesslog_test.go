package proxy

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kakehi/kakehi/pkg/metrics"
)

func TestAccessLogRecordsOneLinePerRequest(t *testing.T) {
	h := newHarness(t)
	b := newBackend(t, "b")
	h.route(rule{host: "a.example", path: "/", service: "web", addrs: []string{b.addr}})
	c := h.dial()
	c.roundTrip("POST /p?q=\"x\" HTTP/1.1\r\nHost: a.example\r\nUser-Agent: t/1 \"quoted\"\r\nX-Request-Id: rid-1\r\nContent-Length: 3\r\n\r\nabc")
	c.roundTrip(get("nowhere", "/"))
	lines := h.logLines(2)
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2", len(lines))
	}
	l := lines[0]
	tok := h.reg.Lookup(b.addr).Token()
	want := map[string]any{
		"method": "POST", "authority": "a.example", "path": `/p?q="x"`, "proto": "HTTP/1.1",
		"status": 200.0, "bytes_in": 3.0, "bytes_out": 1.0, "backend": float64(tok),
		"backend_addr": b.addr, "pod": "ns/pod-" + b.addr, "namespace": "ns", "ingress": "ing",
		"service": "web", "request_id": "rid-1", "user_agent": `t/1 "quoted"`, "attempts": 1.0, "cause": "",
	}
	for k, v := range want {
		if l[k] != v {
			t.Errorf("%s = %#v, want %#v", k, l[k], v)
		}
	}
	for _, k := range []string{"duration", "request_duration", "backend_duration"} {
		if d, ok := l[k].(float64); !ok || d < 0 || d > 10 {
			t.Errorf("%s = %v", k, l[k])
		}
	}
	if _, err := time.Parse(time.RFC3339Nano, l["time"].(string)); err != nil {
		t.Errorf("time %q: %v", l["time"], err)
	}
	if !strings.HasPrefix(l["client"].(string), "127.0.0.1:") {
		t.Errorf("client %v", l["client"])
	}
	if n := lines[1]; n["status"] != 404.0 || n["cause"] != "no_route" || n["request_id"] == "" {
		t.Errorf("404 line %v", n)
	}
	if _, ok := lines[1]["backend"]; ok {
		t.Errorf("404 line names a backend")
	}
}

// blockingWriter blocks every Write until released.
type blockingWriter struct{ release chan struct{} }

func (w blockingWriter) Write(p []byte) (int, error) {
	<-w.release
	return len(p), nil
}

func TestFullAccessLogDropsLinesWithoutSlowingRequests(t *testing.T) {
	w := blockingWriter{make(chan struct{})}
	h := newHarnessWith(t, w, func(o *Options) { o.AccessLogBuffer = 700 })
	defer close(w.release)
	b := newBackend(t, "b")
	h.route(to(b.addr))
	c := h.dial()
	for i := 0; i < 10; i++ {
		if r := c.roundTrip(get("a", "/")); r.StatusCode != 200 {
			t.Fatalf("request %d: %d", i, r.StatusCode)
		}
	}
	h.idle()
	if got := h.metric(metrics.AccessLogDroppedTotal); got < 7 {
		t.Errorf("dropped lines = %v, want at least 7 of 10 with a writer that blocks", got)
	}
}

func TestMetricsRegisterAndNamesAreDocumented(t *testing.T) {
	doc, err := readDoc()
	if err != nil {
		t.Skip("docs/metrics.md not readable:", err)
	}
	prom := prometheus.NewRegistry()
	if err := metrics.NewProxy().Register(prom); err != nil {
		t.Fatal(err)
	}
	mfs, _ := prom.Gather()
	for _, mf := range mfs {
		if !strings.Contains(doc, mf.GetName()) {
			t.Errorf("%s is not in docs/metrics.md", mf.GetName())
		}
	}
	for _, c := range metrics.Causes {
		if !strings.Contains(doc, "`"+c+"`") {
			t.Errorf("cause %s is not in docs/metrics.md", c)
		}
	}
}

// readDoc returns docs/metrics.md.
func readDoc() (string, error) {
	b, err := os.ReadFile("../../docs/metrics.md")
	return string(b), err
}
