package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// scenario is one workload run against each proxy.
type scenario struct {
	Name  string `json:"name"`
	Title string `json:"title"`
	Kind  string `json:"kind"` // "wrk": a timed load run; "idle": idle connections, memory
	// TLS: the load goes to the proxy's TLS listener (ALPN h2 for h2load,
	// none for wrk), with the run's certificate.
	TLS    bool   `json:"tls,omitempty"`
	Method string `json:"method"`
	Path   string `json:"path"`
	// BodyBytes is the payload of each request (response or upload body)
	// that CPU per MiB is computed from; 0 for small responses.
	BodyBytes int64 `json:"body_bytes"`
}

// scenarios are every workload the driver knows, in run order.
var scenarios = []scenario{
	{Name: "small", Title: "keep-alive, 43-byte responses", Kind: "wrk", Method: "GET", Path: "/small"},
	{Name: "big", Title: "keep-alive, 1 MiB responses", Kind: "wrk", Method: "GET", Path: "/big", BodyBytes: bigBody},
	{Name: "upload", Title: "keep-alive, 1 MiB uploads (POST)", Kind: "wrk", Method: "POST", Path: "/upload", BodyBytes: uploadBody},
	{Name: "idle", Title: "idle keep-alive client connections (memory)", Kind: "idle", Method: "GET", Path: "/small"},
	{Name: "h2c-small", Title: "h2c (prior knowledge), 43-byte responses", Kind: "h2load", Method: "GET", Path: "/small"},
	{Name: "h2c-big", Title: "h2c (prior knowledge), 1 MiB responses", Kind: "h2load", Method: "GET", Path: "/big", BodyBytes: bigBody},
	{Name: "tls-small", Title: "HTTP/1.1 over TLS, keep-alive, 43-byte responses", Kind: "wrk", TLS: true, Method: "GET", Path: "/small"},
	{Name: "h2-small", Title: "HTTP/2 over TLS (ALPN h2), 43-byte responses", Kind: "h2load", TLS: true, Method: "GET", Path: "/small"},
	{Name: "h2-big", Title: "HTTP/2 over TLS (ALPN h2), 1 MiB responses", Kind: "h2load", TLS: true, Method: "GET", Path: "/big", BodyBytes: bigBody},
}

func scenarioNames() []string {
	var out []string
	for _, sc := range scenarios {
		out = append(out, sc.Name)
	}
	return out
}

func findScenario(name string) *scenario {
	for i := range scenarios {
		if scenarios[i].Name == name {
			return &scenarios[i]
		}
	}
	return nil
}

// uploadScript makes wrk send 1 MiB POST bodies; wrk formats the request
// once, so the client's cost per upload is one large write.
const uploadScript = `-- Kakehi bench: 1 MiB uploads.
wrk.method = "POST"
wrk.body = string.rep("u", %d)
wrk.headers["Content-Type"] = "application/octet-stream"
`

// writeScripts writes the wrk Lua scripts into dir.
func writeScripts(dir string) error {
	return os.WriteFile(filepath.Join(dir, "upload.lua"), []byte(fmt.Sprintf(uploadScript, uploadBody)), 0o644)
}

// wrkArgv returns the command line of a wrk run of sc against addr: one
// thread on loadCPU, conns connections, for d, with latency percentiles;
// https:// for the TLS scenarios (addr is then the TLS listener).
func wrkArgv(dir string, sc *scenario, addr string, conns int, d time.Duration) []string {
	argv := []string{"taskset", "-c", strconv.Itoa(loadCPU), "wrk", "-t1",
		"-c" + strconv.Itoa(conns), "-d" + wrkDuration(d), "--timeout", "5s", "--latency"}
	if sc.Method == "POST" {
		argv = append(argv, "-s", filepath.Join(dir, "upload.lua"))
	}
	scheme := "http://"
	if sc.TLS {
		scheme = "https://"
	}
	return append(argv, scheme+addr+sc.Path)
}

// wrkDuration formats d the way wrk parses it (whole seconds, at least 1).
func wrkDuration(d time.Duration) string {
	return strconv.Itoa(max(1, int(d.Round(time.Second)/time.Second))) + "s"
}

// runWrk runs wrk and parses its report. The run is bounded by its own -d
// and, should wrk hang, by a timeout 30 s past it.
func runWrk(ctx context.Context, argv []string, d time.Duration) (loadResult, error) {
	ctx, cancel := context.WithTimeout(ctx, d+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return loadResult{Raw: string(out)}, fmt.Errorf("%s: %v: %s", strings.Join(argv, " "), err, firstLines(string(out), 10))
	}
	return parseWrk(string(out))
}

// loadResult is what one load run (wrk or h2load) reports.
type loadResult struct {
	Requests     int64
	Elapsed      time.Duration
	RPS          float64
	Avg          time.Duration
	P50, P99     time.Duration
	Non2xx       int64
	SocketErrors int64
	Raw          string
	Command      string // the command line, filled in by the caller
}

var (
	reTotal   = regexp.MustCompile(`(?m)^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h),`)
	reRPS     = regexp.MustCompile(`(?m)^Requests/sec:\s+([\d.]+)`)
	reLatency = regexp.MustCompile(`(?m)^\s*Latency\s+([\d.]+)(us|ms|s|m|h)\s`)
	rePct     = regexp.MustCompile(`(?m)^\s*(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s|m|h)\s*$`)
	reSocket  = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	reNon2xx  = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
)

// parseWrk parses the report of `wrk --latency`.
func parseWrk(out string) (loadResult, error) {
	r := loadResult{Raw: out}
	m := reTotal.FindStringSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("wrk report without a request count: %s", firstLines(out, 10))
	}
	r.Requests, _ = strconv.ParseInt(m[1], 10, 64)
	r.Elapsed = wrkTime(m[2], m[3])
	if m := reRPS.FindStringSubmatch(out); m != nil {
		r.RPS, _ = strconv.ParseFloat(m[1], 64)
	}
	if m := reLatency.FindStringSubmatch(out); m != nil {
		r.Avg = wrkTime(m[1], m[2])
	}
	for _, m := range rePct.FindAllStringSubmatch(out, -1) {
		switch m[1] {
		case "50":
			r.P50 = wrkTime(m[2], m[3])
		case "99":
			r.P99 = wrkTime(m[2], m[3])
		}
	}
	if m := reSocket.FindStringSubmatch(out); m != nil {
		for _, s := range m[1:] {
			n, _ := strconv.ParseInt(s, 10, 64)
			r.SocketErrors += n
		}
	}
	if m := reNon2xx.FindStringSubmatch(out); m != nil {
		r.Non2xx, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if r.Requests == 0 {
		return r, fmt.Errorf("wrk completed no request: %s", firstLines(strings.TrimSpace(out), 12))
	}
	if r.P50 == 0 || r.P99 == 0 {
		return r, fmt.Errorf("wrk report without latency percentiles (was --latency given?)")
	}
	return r, nil
}

// wrkTime converts one of wrk's formatted durations.
func wrkTime(num, unit string) time.Duration {
	v, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0
	}
	scale := map[string]float64{"us": 1e3, "ms": 1e6, "s": 1e9, "m": 60e9, "h": 3600e9}[unit]
	return time.Duration(v * scale)
}
