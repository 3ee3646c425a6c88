package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/kakehi/kakehi/test/harness"
)

// run is one benchmark inside the namespace: its work folder, backend,
// control plane and report.
type run struct {
	s          *settings
	dir        string
	backend    *proc
	cp         *harness.ControlPlane
	nofile     int // open-files limit of the driver and its children
	skipKakehi string
	cert       *benchCert // the TLS scenarios' certificate, all proxies
	report     *report
}

// newRun prepares the namespace side: the driver and its children on
// loadCPU, the open-files limit, the work folder.
func newRun(s *settings) (*run, error) {
	if err := pinSelf(loadCPU); err != nil {
		return nil, err
	}
	nofile, err := raiseNoFile()
	if err != nil {
		return nil, fmt.Errorf("raising RLIMIT_NOFILE: %w", err)
	}
	// The driver holds the idle connections and each proxy holds them
	// too, plus its backend connections and a few files: both need room.
	if need := uint64(s.IdleConns + 512); nofile < need {
		return nil, fmt.Errorf("open-files limit %d is below the %d that %d idle connections need (raise the hard limit or lower -idle-connections)", nofile, need, s.IdleConns)
	}
	dir, err := os.MkdirTemp("", "kakehi-bench-")
	if err != nil {
		return nil, err
	}
	// nginx workers run as an unprivileged user and read the bodies here.
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	r := &run{s: s, dir: dir, nofile: int(nofile), skipKakehi: os.Getenv(envSkipKakehi)}
	r.report = newReport(s, nofile)
	return r, nil
}

// close stops what the run started and removes its work folder unless
// asked to keep it.
func (r *run) close() {
	if r.cp != nil {
		_ = r.cp.Stop()
	}
	if r.backend != nil {
		r.backend.stop(syscall.SIGTERM, 10*time.Second)
	}
	if r.s.KeepTmp {
		say("work folder kept: %s", r.dir)
		return
	}
	_ = os.RemoveAll(r.dir)
}

// execute starts the backend (and the control plane when Kakehi runs),
// then runs every scenario against every proxy in turn.
func (r *run) execute(ctx context.Context) error {
	if err := writeScripts(r.dir); err != nil {
		return err
	}
	say("starting the backend (nginx on CPU %d at %s)", loadCPU, backendAddr)
	b, cmd, conf, err := startBackend(ctx, r.dir)
	if err != nil {
		return err
	}
	r.backend = b
	r.report.Backend = proxySetup{Command: cmd, Config: conf}
	if r.cert, err = makeBenchCert(r.dir); err != nil {
		return fmt.Errorf("TLS certificate: %w", err)
	}
	if r.s.has("kakehi") && r.skipKakehi == "" {
		say("starting kube-apiserver and etcd for Kakehi")
		cp, err := startControlPlane(ctx, r.cert)
		if err != nil {
			r.skipKakehi = "control plane: " + err.Error()
		}
		r.cp = cp
	}
	if r.skipKakehi != "" {
		r.report.Skipped["kakehi"] = r.skipKakehi
	}
	for _, name := range r.s.Scenarios {
		sc := findScenario(name)
		// Rounds interleave the proxies, so that a noisy moment hits
		// one round of each rather than every round of one.
		runs := map[string][]result{}
		for round := 1; round <= r.s.Rounds; round++ {
			for _, px := range r.s.Proxies {
				if err := ctx.Err(); err != nil {
					r.addMedians(sc, runs)
					return fmt.Errorf("stopped before %s/%s: %w", sc.Name, px, err)
				}
				if px == "kakehi" && r.skipKakehi != "" {
					continue
				}
				if px == "direct" && (sc.Kind != "wrk" || sc.TLS) {
					continue // no proxy's memory to measure; the backend has no h2c or TLS
				}
				res := r.measure(ctx, sc, px)
				res.Round = round
				runs[px] = append(runs[px], res)
				if r.s.Rounds > 1 {
					say("%s (round %d of %d)", res.summary(), round, r.s.Rounds)
				} else {
					say("%s", res.summary())
				}
			}
		}
		r.addMedians(sc, runs)
	}
	return nil
}

// addMedians adds to the report, for each proxy, the round with the
// median figure of merit (CPU per request, or memory per connection),
// with every round's figure alongside.
func (r *run) addMedians(sc *scenario, runs map[string][]result) {
	for _, px := range r.s.Proxies {
		all := runs[px]
		if len(all) == 0 {
			continue
		}
		var ok []result
		var figures []float64
		for _, res := range all {
			if res.Error == "" {
				ok = append(ok, res)
			}
		}
		if len(ok) == 0 {
			r.report.add(all[0])
			continue
		}
		sort.SliceStable(ok, func(i, j int) bool { return ok[i].merit() < ok[j].merit() })
		for _, res := range ok {
			figures = append(figures, res.merit())
		}
		med := ok[len(ok)/2]
		if len(all) > 1 {
			med.RoundFigures = figures
			med.FailedRounds = len(all) - len(ok)
		}
		r.report.add(med)
	}
}

// startProxy starts the named proxy for scenario sc and records how. The
// backend pool is -pool, or at least the concurrent streams of an HTTP/2
// scenario (fewer would make nginx churn upstream connections).
func (r *run) startProxy(ctx context.Context, name string, sc *scenario) (proxy, error) {
	var (
		p     proxy
		setup proxySetup
		err   error
	)
	pool := r.s.Pool
	if sc.Kind == "h2load" {
		pool = max(pool, r.s.H2Clients*r.s.H2Streams)
	}
	var cert *benchCert // the TLS listener only where it is used
	if sc.TLS {
		cert = r.cert
	}
	switch name {
	case "direct":
		return directProxy{}, nil
	case "nginx":
		p, setup, err = startNginxProxy(ctx, r.dir, r.s, r.nofile, pool, cert)
	case "haproxy":
		p, setup, err = startHAProxy(ctx, r.dir, r.s, r.nofile, pool, cert)
	case "kakehi":
		p, setup, err = startKakehi(ctx, r.dir, r.cp, r.s, pool)
	default:
		err = fmt.Errorf("unknown proxy %q", name)
	}
	r.report.Proxies[name+setupSuffix(sc)] = setup
	return p, err
}

// setupSuffix tells apart in the report the setups of a proxy that differ
// by scenario (the HTTP/2 pool, the TLS listener).
func setupSuffix(sc *scenario) string {
	switch {
	case sc.TLS:
		return " (TLS scenarios)"
	case sc.Kind == "h2load":
		return " (HTTP/2 scenarios)"
	}
	return ""
}

// measure runs scenario sc against a freshly started proxy px.
func (r *run) measure(ctx context.Context, sc *scenario, px string) result {
	res := result{Scenario: sc.Name, Proxy: px}
	say("%s: starting %s", sc.Name, px)
	p, err := r.startProxy(ctx, px, sc)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	defer p.stop()
	res.PinnedCPUs = pinnedCPUs(p.pids())
	if sc.TLS {
		if err := r.checkTLS(ctx, sc, p, &res); err != nil {
			res.Error = err.Error()
			return res
		}
	}
	if sc.Kind == "idle" {
		r.measureIdle(ctx, sc, p, &res)
		return res
	}
	load, err := r.loadRun(sc, p)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	if r.s.Warmup > 0 {
		if _, err := load(ctx, r.s.Warmup, false); err != nil {
			res.Error = "warm-up: " + err.Error()
			return res
		}
	}
	acc0, erra0 := backendAccepts(ctx)
	cpu0, err0 := cpuTime(p.pids())
	st0, errs0 := readCPUStat(proxyCPU)
	w, err := load(ctx, r.s.Duration, true)
	cpu1, err1 := cpuTime(p.pids())
	st1, errs1 := readCPUStat(proxyCPU)
	acc1, erra1 := backendAccepts(ctx)
	res.Command = w.Command
	res.LoadOutput = w.Raw
	if err != nil {
		res.Error = err.Error()
		return res
	}
	for _, e := range []error{err0, err1, errs0, errs1, erra0, erra1} {
		if e != nil {
			res.Error = "reading counters: " + e.Error()
			return res
		}
	}
	res.BackendConns = acc1 - acc0
	res.fromLoad(w, sc)
	if len(p.pids()) > 0 {
		res.setCPU(cpu1-cpu0, sc)
	}
	res.CPU1BusySeconds = float64(st1.Busy-st0.Busy) * clockTick.Seconds()
	res.CPU1IRQSeconds = float64(st1.IRQ-st0.IRQ) * clockTick.Seconds()
	res.CPU1StealSeconds = float64(st1.Steal-st0.Steal) * clockTick.Seconds()
	return res
}

// loadFunc runs one bounded load of duration d; measured runs record
// their latency percentiles.
type loadFunc func(ctx context.Context, d time.Duration, measured bool) (loadResult, error)

// loadRun returns how scenario sc loads proxy p: wrk for HTTP/1.1, h2load
// with prior-knowledge h2c for the HTTP/2 scenarios.
func (r *run) loadRun(sc *scenario, p proxy) (loadFunc, error) {
	switch sc.Kind {
	case "wrk":
		addr := p.addr()
		if sc.TLS {
			addr = p.tlsAddr()
		}
		return func(ctx context.Context, d time.Duration, _ bool) (loadResult, error) {
			argv := wrkArgv(r.dir, sc, addr, r.s.Conns, d)
			res, err := runWrk(ctx, argv, d)
			res.Command = strings.Join(argv, " ")
			return res, err
		}, nil
	case "h2load":
		addr := p.h2Addr()
		if sc.TLS {
			addr = p.tlsAddr()
		}
		if addr == "" {
			return nil, fmt.Errorf("no h2c or TLS listener")
		}
		return func(ctx context.Context, d time.Duration, measured bool) (loadResult, error) {
			logPath := ""
			if measured {
				logPath = filepath.Join(r.dir, "h2load.log")
			}
			argv := h2loadArgv(sc, addr, r.s.H2Clients, r.s.H2Streams, d, logPath)
			res, err := runH2load(ctx, argv, d, logPath)
			res.Command = strings.Join(argv, " ")
			return res, err
		}, nil
	}
	return nil, fmt.Errorf("scenario %s: unknown kind %q", sc.Name, sc.Kind)
}

// checkTLS waits until p answers over TLS with the run's certificate and
// records what a client negotiates with it (ALPN h2 for the HTTP/2
// scenarios, none as from wrk otherwise).
func (r *run) checkTLS(ctx context.Context, sc *scenario, p proxy, res *result) error {
	addr := p.tlsAddr()
	if addr == "" {
		return fmt.Errorf("no TLS listener")
	}
	exited := func() error { return nil }
	if e, ok := p.(interface{ exited() error }); ok {
		exited = e.exited
	}
	if err := checkServesTLS(ctx, addr, r.cert, exited); err != nil {
		return err
	}
	alpn := ""
	if sc.Kind == "h2load" {
		alpn = "h2"
	}
	desc, err := probeTLS(ctx, addr, alpn)
	if err != nil {
		return fmt.Errorf("TLS probe: %w", err)
	}
	res.TLS = desc
	return nil
}

// measureIdle runs the idle scenario: a short warm-up so that the proxy's
// pools and heap exist, then runIdle.
func (r *run) measureIdle(ctx context.Context, sc *scenario, p proxy, res *result) {
	if r.s.Warmup > 0 {
		warm := wrkArgv(r.dir, findScenario("small"), p.addr(), r.s.Conns, r.s.Warmup)
		if _, err := runWrk(ctx, warm, r.s.Warmup); err != nil {
			res.Error = "warm-up: " + err.Error()
			return
		}
	}
	// Let closed warm-up connections and timers go before the baseline.
	select {
	case <-ctx.Done():
		res.Error = ctx.Err().Error()
		return
	case <-time.After(time.Second):
	}
	res.Command = fmt.Sprintf("driver: %d connections to %s (%d dialing at a time), one GET %s each, then idle; VmRSS of the proxy before and 2 s after",
		r.s.IdleConns, p.addr(), idleDialers, sc.Path)
	ir, err := runIdle(ctx, p.addr(), r.s.IdleConns, p.pids(), 2*time.Second)
	res.Idle = &ir
	if err != nil {
		res.Error = err.Error()
		return
	}
	if ir.Answered < ir.Wanted {
		res.Error = fmt.Sprintf("%d of %d connections failed, first: %s", ir.Wanted-ir.Answered, ir.Wanted, strings.Join(ir.Failures, "; "))
	}
}

// pinnedCPUs returns the distinct Cpus_allowed_list values of pids, to
// show in the report that the proxy ran where it was meant to.
func pinnedCPUs(pids []int) string {
	seen := map[string]bool{}
	var out []string
	for _, pid := range pids {
		v, err := statusField(pid, "Cpus_allowed_list")
		if err != nil || seen[v] {
			continue
		}
		seen[v] = true
		out = append(out, v)
	}
	return strings.Join(out, " ")
}
