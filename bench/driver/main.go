// Command driver benchmarks Kakehi side by side with nginx and HAProxy on
// one machine (see bench/README.md). It re-executes itself inside a private
// network namespace, starts one nginx backend pinned to CPU 0, then runs
// each proxy in turn, alone on CPU 1 with one worker, against that backend
// while wrk (also on CPU 0) loads it. It measures throughput, the proxy's
// CPU per request, latency percentiles and memory per idle connection, and
// writes a Markdown and a JSON report.
//
// All traffic stays on 127.0.0.1 and 198.18.x.y inside the namespace; every
// load run is bounded in time and the whole run has a deadline.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/kakehi/kakehi/test/harness"
)

// settings are the driver's command-line flags.
type settings struct {
	Duration   time.Duration `json:"duration"`
	Warmup     time.Duration `json:"warmup"`
	Scenarios  []string      `json:"scenarios"`
	Proxies    []string      `json:"proxies"`
	Quick      bool          `json:"quick"`
	Rounds     int           `json:"rounds"`
	Conns      int           `json:"connections"`
	IdleConns  int           `json:"idle_connections"`
	H2Clients  int           `json:"h2_clients"`
	H2Streams  int           `json:"h2_streams_per_client"`
	Pool       int           `json:"backend_pool"`
	Forwarded  bool          `json:"forwarded_headers"`
	AccessLog  string        `json:"kakehi_access_log"`
	KakehiArgs []string      `json:"kakehi_args,omitempty"`
	OutDir     string        `json:"-"`
	KeepTmp    bool          `json:"-"`
}

// defaultScenarios run when -scenarios is not given; the HTTP/2 ones
// (h2c-*) and the TLS ones (tls-small, h2-*) are opt-in.
var defaultScenarios = []string{"small", "big", "upload", "idle"}

func parseSettings(args []string) (*settings, error) {
	s := &settings{}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.DurationVar(&s.Duration, "duration", 10*time.Second, "length of each measured load run")
	fs.DurationVar(&s.Warmup, "warmup", 2*time.Second, "length of the unmeasured load run before each measured one")
	scen := fs.String("scenarios", strings.Join(defaultScenarios, ","), "comma-separated scenarios: "+strings.Join(scenarioNames(), ","))
	prox := fs.String("proxies", "kakehi,nginx,haproxy", "comma-separated proxies: kakehi,nginx,haproxy (and direct: wrk straight at the backend, for reference)")
	fs.BoolVar(&s.Quick, "quick", false, "check the harness: 2 s runs, 1 s warm-ups, 1000 idle connections; report goes to bench/tmp/")
	fs.IntVar(&s.Rounds, "rounds", 1, "measured runs of each scenario and proxy, interleaved; the report keeps the median by CPU per request (or memory per connection)")
	fs.IntVar(&s.Conns, "connections", 64, "client connections of each load run (wrk -c)")
	fs.IntVar(&s.IdleConns, "idle-connections", 10000, "connections held open by the idle scenario")
	fs.IntVar(&s.H2Clients, "h2-clients", 4, "HTTP/2 connections of the h2c scenarios (h2load -c)")
	fs.IntVar(&s.H2Streams, "h2-streams", 25, "concurrent streams per HTTP/2 connection (h2load -m)")
	fs.IntVar(&s.Pool, "pool", 64, "idle keep-alive backend connections each proxy may keep (nginx keepalive, HAProxy pool-max-conn, Kakehi --proxy-max-idle-backend-conns)")
	fs.BoolVar(&s.Forwarded, "forwarded-headers", true, "make nginx and HAProxy set X-Forwarded-For/-Proto/-Host/-Port and X-Request-Id as Kakehi does (false: their minimal configs)")
	fs.StringVar(&s.AccessLog, "kakehi-access-log", "", "Kakehi's --access-log during the run (empty: off, like nginx and HAProxy here)")
	kargs := fs.String("kakehi-args", "", "extra space-separated flags for the Kakehi controller")
	fs.StringVar(&s.OutDir, "out", "", "report folder (default bench/results, or bench/tmp with -quick)")
	fs.BoolVar(&s.KeepTmp, "keep", false, "keep the work folder (configs, logs) after the run")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	set := func(name string) bool {
		found := false
		fs.Visit(func(f *flag.Flag) { found = found || f.Name == name })
		return found
	}
	if s.Quick {
		if !set("duration") {
			s.Duration = 2 * time.Second
		}
		if !set("warmup") {
			s.Warmup = time.Second
		}
		if !set("idle-connections") {
			s.IdleConns = 1000
		}
	}
	s.Scenarios = splitList(*scen)
	s.Proxies = splitList(*prox)
	s.KakehiArgs = strings.Fields(*kargs)
	for _, n := range s.Scenarios {
		if findScenario(n) == nil {
			return nil, fmt.Errorf("unknown scenario %q (known: %s)", n, strings.Join(scenarioNames(), ","))
		}
	}
	for _, p := range s.Proxies {
		switch p {
		case "kakehi", "nginx", "haproxy", "direct":
		default:
			return nil, fmt.Errorf("unknown proxy %q (known: kakehi,nginx,haproxy,direct)", p)
		}
	}
	switch {
	case s.Duration < time.Second || s.Duration > 10*time.Minute:
		return nil, fmt.Errorf("-duration %v must be between 1s and 10m", s.Duration)
	case s.Warmup < 0 || s.Warmup > time.Minute:
		return nil, fmt.Errorf("-warmup %v must be between 0 and 1m", s.Warmup)
	case s.Rounds < 1 || s.Rounds > 20:
		return nil, fmt.Errorf("-rounds %d must be between 1 and 20", s.Rounds)
	case s.Conns < 1 || s.Conns > 4096:
		return nil, fmt.Errorf("-connections %d must be between 1 and 4096", s.Conns)
	case s.IdleConns < 1 || s.IdleConns > 100000:
		return nil, fmt.Errorf("-idle-connections %d must be between 1 and 100000", s.IdleConns)
	case s.H2Clients < 1 || s.H2Clients > 1024 || s.H2Streams < 1 || s.H2Streams > 1000:
		return nil, fmt.Errorf("-h2-clients must be 1..1024 and -h2-streams 1..1000")
	case s.Pool < 1:
		return nil, fmt.Errorf("-pool %d must be positive", s.Pool)
	case len(s.Scenarios) == 0 || len(s.Proxies) == 0:
		return nil, fmt.Errorf("-scenarios and -proxies must name at least one each")
	}
	if s.OutDir == "" {
		s.OutDir = filepath.Join(harness.RepoRoot(), "bench", "results")
		if s.Quick {
			s.OutDir = filepath.Join(harness.RepoRoot(), "bench", "tmp")
		}
	}
	return s, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func (s *settings) has(proxy string) bool {
	for _, p := range s.Proxies {
		if p == proxy {
			return true
		}
	}
	return false
}

// Environment variables through which the outer process hands what it
// prepared to the driver running inside the namespace.
const (
	envSkipKakehi = "KAKEHI_BENCH_SKIP_KAKEHI" // why Kakehi cannot run
	envRevision   = "KAKEHI_BENCH_REVISION"    // git revision of the tree
)

func main() {
	s, err := parseSettings(os.Args[1:])
	if err != nil {
		if err == flag.ErrHelp {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	if !harness.InNetNS() {
		os.Exit(outer(s))
	}
	os.Exit(inner(s))
}

// outer runs on the host: it checks the tools, builds what the run needs
// (the controller, the control plane) while the module proxy is reachable,
// and re-executes the driver inside a private network namespace.
func outer(s *settings) int {
	if os.Geteuid() != 0 {
		say("warning: not root; the network namespace will be a user namespace and taskset/rlimits may be refused")
	}
	var missing []string
	for _, tool := range []string{"nginx", "haproxy", "wrk", "taskset", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) > 0 {
		say("missing tools: %s (bench/run.sh installs them with apt-get)", strings.Join(missing, ", "))
		return 1
	}
	if n := countCPUs(); n <= proxyCPU {
		say("this machine has %d CPU(s); the benchmark needs CPU %d for the proxy and CPU %d for the load", n, proxyCPU, loadCPU)
		return 1
	}
	os.Setenv(envRevision, gitRevision())
	if s.has("kakehi") {
		if err := prepareKakehi(); err != nil {
			say("Kakehi will be skipped: %v", err)
			os.Setenv(envSkipKakehi, err.Error())
		}
	}
	signal.Ignore(os.Interrupt, syscall.SIGTERM) // the child gets them too and cleans up
	code, err := harness.ReexecInNetNS()
	if err != nil {
		say("%v", err)
	}
	return code
}

// prepareKakehi builds the controller and a wrapper that starts it with
// GOMAXPROCS=1 pinned to CPU 1 (harness.StartController runs
// $KAKEHI_BINARY), and builds or finds kube-apiserver and etcd.
func prepareKakehi() error {
	dir := filepath.Join(harness.RepoRoot(), "bench", "tmp")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	bin := filepath.Join(dir, "kakehi")
	say("building the controller: go build -o %s ./cmd/controller", bin)
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/controller")
	cmd.Dir = harness.RepoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/controller failed: %v\n%s", err, firstLines(string(out), 12))
	}
	wrapper := filepath.Join(dir, "kakehi-pinned")
	script := fmt.Sprintf("#!/bin/sh\n# Kakehi alone on CPU %d with one P; exec keeps the PID.\nGOMAXPROCS=1 exec taskset -c %d '%s' \"$@\"\n", proxyCPU, proxyCPU, bin)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		return err
	}
	os.Setenv("KAKEHI_BINARY", wrapper)
	say("finding or building kube-apiserver and etcd (first run: a few minutes)...")
	cp, err := harness.ControlPlaneBinaries()
	if err != nil {
		return err
	}
	os.Setenv("KAKEHI_CONTROL_PLANE_DIR", cp)
	return nil
}

// inner runs inside the namespace and does the whole benchmark.
func inner(s *settings) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, s.budget())
	defer cancel()
	if err := harness.SetupNetNS(); err != nil {
		say("%v", err)
		return 1
	}
	r, err := newRun(s)
	if err != nil {
		say("%v", err)
		return 1
	}
	defer r.close()
	if err := r.execute(ctx); err != nil {
		say("%v", err)
		r.report.Failure = err.Error()
	}
	md, js, werr := r.report.write(s.OutDir)
	if werr != nil {
		say("writing the report: %v", werr)
		return 1
	}
	fmt.Println()
	fmt.Print(r.report.tables())
	if worst := r.report.noisiest(); worst > noisyShare {
		say("noisy run: CPU 1 was busy with other work for up to %.0f%% of a run; figures are only indicative", worst*100)
	}
	say("report: %s and %s", md, js)
	if r.report.Failure != "" || r.report.incomplete() {
		return 1
	}
	return 0
}

// budget bounds the whole run: control plane start, and for each scenario
// and proxy a start, a warm-up, a measured run and their timeouts.
func (s *settings) budget() time.Duration {
	per := s.Warmup + s.Duration + 90*time.Second
	return 5*time.Minute + time.Duration(len(s.Scenarios)*len(s.Proxies)*s.Rounds)*per
}

// say prints a progress line.
func say(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

// gitRevision returns the short commit of the tree, with "+dirty" when it
// has local changes or files not yet committed, or "unknown".
func gitRevision() string {
	out, err := exec.Command("git", "-C", harness.RepoRoot(), "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	rev := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "-C", harness.RepoRoot(), "status", "--porcelain").Output(); err == nil && len(st) > 0 {
		rev += "+dirty"
	}
	return rev
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = append(lines[:n], "...")
	}
	return strings.Join(lines, "\n")
}
