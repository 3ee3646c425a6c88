package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// result is one scenario run against one proxy.
type result struct {
	Scenario string `json:"scenario"`
	Proxy    string `json:"proxy"`
	Error    string `json:"error,omitempty"`
	Command  string `json:"command,omitempty"`

	Requests    int64   `json:"requests,omitempty"`
	Seconds     float64 `json:"seconds,omitempty"`
	RPS         float64 `json:"requests_per_second,omitempty"`
	AvgUs       float64 `json:"latency_avg_us,omitempty"`
	P50Us       float64 `json:"latency_p50_us,omitempty"`
	P99Us       float64 `json:"latency_p99_us,omitempty"`
	Non2xx      int64   `json:"non_2xx,omitempty"`
	SocketErrs  int64   `json:"socket_errors,omitempty"`
	CPUSeconds  float64 `json:"proxy_cpu_seconds,omitempty"`
	CPUPerReqUs float64 `json:"proxy_cpu_per_request_us,omitempty"`
	CPUPerMiBUs float64 `json:"proxy_cpu_per_mib_us,omitempty"`

	// CPU1BusySeconds is the time CPU 1 ran tasks during the run, the
	// proxy's and anything else's; CPU1IRQSeconds the time accounted to
	// interrupts there; CPU1StealSeconds what the hypervisor took. They
	// show how noisy the run was.
	CPU1BusySeconds  float64 `json:"cpu1_busy_seconds,omitempty"`
	CPU1IRQSeconds   float64 `json:"cpu1_irq_seconds,omitempty"`
	CPU1StealSeconds float64 `json:"cpu1_steal_seconds,omitempty"`
	PinnedCPUs       string  `json:"proxy_cpus_allowed,omitempty"`
	// TLS is what a client negotiated with the proxy's TLS listener just
	// before the run (TLS scenarios): version, cipher, key exchange, ALPN.
	TLS string `json:"tls_negotiated,omitempty"`
	// BackendConns is how many connections the backend accepted during
	// the measured run (the driver's own status reads included: 0–2).
	BackendConns int64 `json:"backend_connections_opened"`

	// Round is the round this result comes from; with -rounds above 1 the
	// report keeps the median round and lists every round's figure of
	// merit (CPU per request or per MiB, or KiB per idle connection).
	Round        int       `json:"round,omitempty"`
	RoundFigures []float64 `json:"round_figures,omitempty"`
	FailedRounds int       `json:"failed_rounds,omitempty"`

	Idle       *idleResult `json:"idle,omitempty"`
	LoadOutput string      `json:"load_output,omitempty"`
}

func (r *result) fromLoad(w loadResult, sc *scenario) {
	r.Requests = w.Requests
	r.Seconds = w.Elapsed.Seconds()
	r.RPS = w.RPS
	r.AvgUs = us(w.Avg)
	r.P50Us = us(w.P50)
	r.P99Us = us(w.P99)
	r.Non2xx = w.Non2xx
	r.SocketErrs = w.SocketErrors
	if bad := w.Non2xx + w.SocketErrors; bad*100 > w.Requests {
		r.Error = fmt.Sprintf("%d non-2xx answers and %d socket errors in %d requests", w.Non2xx, w.SocketErrors, w.Requests)
	}
}

func (r *result) setCPU(cpu time.Duration, sc *scenario) {
	r.CPUSeconds = cpu.Seconds()
	if r.Requests > 0 {
		r.CPUPerReqUs = us(cpu) / float64(r.Requests)
		if sc.BodyBytes > 0 {
			r.CPUPerMiBUs = r.CPUPerReqUs * float64(1<<20) / float64(sc.BodyBytes)
		}
	}
}

// merit is the figure the rounds are ranked by: lower is better.
func (r *result) merit() float64 {
	switch {
	case r.Idle != nil:
		return r.Idle.KiBPerConn()
	case r.CPUPerMiBUs > 0:
		return r.CPUPerMiBUs
	case r.CPUPerReqUs > 0:
		return r.CPUPerReqUs
	}
	if r.RPS > 0 {
		return 1 / r.RPS // "direct": no proxy CPU, rank by throughput
	}
	return 0
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// summary is the progress line printed after each run.
func (r *result) summary() string {
	switch {
	case r.Error != "":
		return fmt.Sprintf("%s/%s: FAILED: %s", r.Scenario, r.Proxy, firstLines(r.Error, 6))
	case r.Idle != nil:
		return fmt.Sprintf("%s/%s: %d connections, %.2f KiB each (RSS %d → %d KiB), %d still open", r.Scenario, r.Proxy,
			r.Idle.Answered, r.Idle.KiBPerConn(), r.Idle.BaseKiB, r.Idle.AfterKiB, r.Idle.OpenAfter)
	case r.Proxy == "direct":
		return fmt.Sprintf("%s/%s: %.0f req/s, p50 %s, p99 %s", r.Scenario, r.Proxy, r.RPS, latency(r.P50Us), latency(r.P99Us))
	default:
		return fmt.Sprintf("%s/%s: %.0f req/s, proxy CPU %.2f µs/req, p50 %s, p99 %s", r.Scenario, r.Proxy,
			r.RPS, r.CPUPerReqUs, latency(r.P50Us), latency(r.P99Us))
	}
}

// machine describes where the run happened.
type machine struct {
	NProc       int    `json:"nproc"`
	CPUModel    string `json:"cpu_model"`
	Kernel      string `json:"kernel"`
	MemTotal    string `json:"mem_total"`
	Go          string `json:"go"`
	LoadStart   string `json:"loadavg_start"`
	LoadEnd     string `json:"loadavg_end"`
	NoFileLimit uint64 `json:"nofile_limit"`
}

// report is everything a run writes.
type report struct {
	Started   time.Time             `json:"started"`
	Finished  time.Time             `json:"finished"`
	Revision  string                `json:"revision"`
	Machine   machine               `json:"machine"`
	Versions  map[string]string     `json:"versions"`
	Settings  *settings             `json:"settings"`
	Scenarios []scenario            `json:"scenarios"`
	Backend   proxySetup            `json:"backend"`
	Proxies   map[string]proxySetup `json:"proxies"`
	Skipped   map[string]string     `json:"skipped,omitempty"`
	Results   []result              `json:"results"`
	Failure   string                `json:"failure,omitempty"`
}

func newReport(s *settings, nofile uint64) *report {
	rep := &report{
		Started:  time.Now(),
		Revision: os.Getenv(envRevision),
		Settings: s,
		Versions: toolVersions(),
		Proxies:  map[string]proxySetup{},
		Skipped:  map[string]string{},
		Machine: machine{
			NProc:       countCPUs(),
			CPUModel:    cpuModel(),
			Kernel:      readTrim("/proc/sys/kernel/osrelease"),
			MemTotal:    memTotal(),
			Go:          runtime.Version(),
			LoadStart:   readTrim("/proc/loadavg"),
			NoFileLimit: nofile,
		},
	}
	for _, n := range s.Scenarios {
		rep.Scenarios = append(rep.Scenarios, *findScenario(n))
	}
	return rep
}

func (rep *report) add(r result) { rep.Results = append(rep.Results, r) }

// incomplete reports whether a requested run failed or was skipped.
func (rep *report) incomplete() bool {
	if len(rep.Skipped) > 0 {
		return true
	}
	for _, r := range rep.Results {
		if r.Error != "" {
			return true
		}
	}
	return false
}

// write writes <date>-<time>.md and .json into dir and returns their paths.
func (rep *report) write(dir string) (string, string, error) {
	rep.Finished = time.Now()
	rep.Machine.LoadEnd = readTrim("/proc/loadavg")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	base := filepath.Join(dir, rep.Started.Format("2006-01-02-1504"))
	if rep.Settings.Quick {
		base += "-quick"
	}
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return "", "", err
	}
	if err := os.WriteFile(base+".json", append(js, '\n'), 0o644); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(base+".md", []byte(rep.markdown()), 0o644); err != nil {
		return "", "", err
	}
	return base + ".md", base + ".json", nil
}

// toolVersions asks each tool for its version.
func toolVersions() map[string]string {
	v := map[string]string{}
	for name, argv := range map[string][]string{
		"nginx":   {"nginx", "-v"},
		"haproxy": {"haproxy", "-v"},
		"wrk":     {"wrk", "-v"},
		"h2load":  {"h2load", "--version"},
	} {
		out, _ := exec.Command(argv[0], argv[1:]...).CombinedOutput()
		line := strings.TrimSpace(firstLines(string(out), 1))
		line = strings.TrimSuffix(line, "...")
		if line == "" {
			line = "not installed"
		}
		v[name] = strings.TrimSpace(line)
	}
	return v
}

func readTrim(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}

// countCPUs counts the machine's processors from /proc/cpuinfo (the
// driver's own affinity mask is one CPU, so runtime.NumCPU would say 1).
func countCPUs() int {
	n := 0
	for _, line := range strings.Split(readTrim("/proc/cpuinfo"), "\n") {
		if strings.HasPrefix(line, "processor") {
			n++
		}
	}
	return n
}

func cpuModel() string {
	for _, line := range strings.Split(readTrim("/proc/cpuinfo"), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func memTotal() string {
	for _, line := range strings.Split(readTrim("/proc/meminfo"), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && k == "MemTotal" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}
