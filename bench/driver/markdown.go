package main

import (
	"fmt"
	"sort"
	"strings"
)

// reference proxies that every other is compared to, in column order.
var references = []struct{ proxy, label string }{{"nginx", "nginx"}, {"haproxy", "HAProxy"}}

// find returns the successful result of proxy in scenario, or nil.
func (rep *report) find(scen, proxy string) *result {
	for i := range rep.Results {
		r := &rep.Results[i]
		if r.Scenario == scen && r.Proxy == proxy && r.Error == "" {
			return r
		}
	}
	return nil
}

// tables renders one Markdown table per scenario, with each proxy's
// figures and their ratios to nginx's and HAProxy's.
func (rep *report) tables() string {
	var b strings.Builder
	for _, sc := range rep.Scenarios {
		fmt.Fprintf(&b, "### %s: %s\n\n", sc.Name, rep.scenarioTitle(sc))
		if sc.Kind == "idle" {
			rep.idleTable(&b, sc)
		} else {
			rep.loadTable(&b, sc)
		}
		rep.roundsLine(&b, sc)
		rep.tlsLine(&b, sc)
		b.WriteString("\n")
	}
	return b.String()
}

func (rep *report) scenarioTitle(sc scenario) string {
	switch sc.Kind {
	case "idle":
		return fmt.Sprintf("%d %s", rep.Settings.IdleConns, sc.Title)
	case "h2load":
		return fmt.Sprintf("%s, %d connections × %d streams, %v", sc.Title, rep.Settings.H2Clients, rep.Settings.H2Streams, rep.Settings.Duration)
	}
	return fmt.Sprintf("%s, %d connections, %v", sc.Title, rep.Settings.Conns, rep.Settings.Duration)
}

// loadTable renders a wrk scenario. For body scenarios the CPU figure is
// per MiB of body, i.e. CPU per byte scaled to something readable.
func (rep *report) loadTable(b *strings.Builder, sc scenario) {
	cpuName, cpuOf := "proxy CPU µs/req", func(r *result) float64 { return r.CPUPerReqUs }
	if sc.BodyBytes > 0 {
		cpuName, cpuOf = "proxy CPU µs/MiB", func(r *result) float64 { return r.CPUPerMiBUs }
	}
	head := []string{"proxy", "req/s", cpuName, "p50", "p99"}
	for _, ref := range references {
		head = append(head, "CPU ×"+ref.label, "req/s ×"+ref.label, "p50 ×"+ref.label, "p99 ×"+ref.label)
	}
	head = append(head, "CPU 1 other", "new backend conns", "errors")
	row(b, head...)
	row(b, strings.Split(strings.Repeat("---,", len(head)-1)+"---", ",")...)
	for _, px := range rep.Settings.Proxies {
		if why, ok := rep.Skipped[px]; ok {
			row(b, px, "skipped: "+oneLine(why))
			continue
		}
		r := rep.resultOf(sc.Name, px)
		if r == nil {
			continue
		}
		if r.Error != "" {
			row(b, px, "failed: "+oneLine(r.Error))
			continue
		}
		cells := []string{px, fmt.Sprintf("%.0f", r.RPS), cpuCell(cpuOf(r), px), latency(r.P50Us), latency(r.P99Us)}
		for _, ref := range references {
			o := rep.find(sc.Name, ref.proxy)
			if o == nil || px == "direct" {
				cells = append(cells, "", "", "", "")
				continue
			}
			cells = append(cells, ratio(cpuOf(r), cpuOf(o)), ratio(r.RPS, o.RPS), ratio(r.P50Us, o.P50Us), ratio(r.P99Us, o.P99Us))
		}
		cells = append(cells, otherOnCPU1(r), fmt.Sprint(r.BackendConns), fmt.Sprint(r.Non2xx+r.SocketErrs))
		row(b, cells...)
	}
}

// idleTable renders the memory scenario.
func (rep *report) idleTable(b *strings.Builder, sc scenario) {
	head := []string{"proxy", "connections", "still open", "RSS before", "RSS after", "KiB per connection"}
	for _, ref := range references {
		head = append(head, "×"+ref.label)
	}
	row(b, head...)
	row(b, strings.Split(strings.Repeat("---,", len(head)-1)+"---", ",")...)
	for _, px := range rep.Settings.Proxies {
		if why, ok := rep.Skipped[px]; ok {
			row(b, px, "skipped: "+oneLine(why))
			continue
		}
		r := rep.resultOf(sc.Name, px)
		if r == nil {
			continue
		}
		if r.Error != "" || r.Idle == nil {
			row(b, px, "failed: "+oneLine(r.Error))
			continue
		}
		ir := r.Idle
		cells := []string{px, fmt.Sprint(ir.Answered), fmt.Sprint(ir.OpenAfter),
			fmt.Sprintf("%d KiB", ir.BaseKiB), fmt.Sprintf("%d KiB", ir.AfterKiB), fmt.Sprintf("%.2f", ir.KiBPerConn())}
		for _, ref := range references {
			o := rep.find(sc.Name, ref.proxy)
			if o == nil || o.Idle == nil {
				cells = append(cells, "")
				continue
			}
			cells = append(cells, ratio(ir.KiBPerConn(), o.Idle.KiBPerConn()))
		}
		row(b, cells...)
	}
}

// roundsLine lists every round's figure of merit when there were several.
func (rep *report) roundsLine(b *strings.Builder, sc scenario) {
	var parts []string
	for _, px := range rep.Settings.Proxies {
		r := rep.resultOf(sc.Name, px)
		if r == nil || len(r.RoundFigures) == 0 {
			continue
		}
		var figs []string
		for _, f := range r.RoundFigures {
			figs = append(figs, fmt.Sprintf("%.2f", f))
		}
		part := px + " " + strings.Join(figs, ", ")
		if r.FailedRounds > 0 {
			part += fmt.Sprintf(" (%d failed)", r.FailedRounds)
		}
		parts = append(parts, part)
	}
	if len(parts) > 0 {
		fmt.Fprintf(b, "\nRounds, sorted (the median is shown above): %s.\n", strings.Join(parts, "; "))
	}
}

// tlsLine lists what each proxy negotiated in a TLS scenario.
func (rep *report) tlsLine(b *strings.Builder, sc scenario) {
	if !sc.TLS {
		return
	}
	var parts []string
	for _, px := range rep.Settings.Proxies {
		if r := rep.resultOf(sc.Name, px); r != nil && r.TLS != "" {
			parts = append(parts, px+": "+r.TLS)
		}
	}
	if len(parts) > 0 {
		fmt.Fprintf(b, "\nNegotiated: %s.\n", strings.Join(parts, "; "))
	}
}

// resultOf returns the result of proxy in scenario, failed or not.
func (rep *report) resultOf(scen, proxy string) *result {
	for i := range rep.Results {
		if r := &rep.Results[i]; r.Scenario == scen && r.Proxy == proxy {
			return r
		}
	}
	return nil
}

func row(b *strings.Builder, cells ...string) {
	b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
}

func cpuCell(v float64, proxy string) string {
	if proxy == "direct" {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", v)
}

func ratio(a, b float64) string {
	if a == 0 || b == 0 {
		return ""
	}
	return fmt.Sprintf("%.2f×", a/b)
}

func latency(usv float64) string {
	if usv < 1000 {
		return fmt.Sprintf("%.0f µs", usv)
	}
	return fmt.Sprintf("%.2f ms", usv/1000)
}

// noisyShare is the share of a run that others may take of CPU 1 before
// the report calls the run noisy.
const noisyShare = 0.05

// noisiest returns the largest share of a run during which CPU 1 was busy
// with something other than the proxy.
func (rep *report) noisiest() float64 {
	worst := 0.0
	for i := range rep.Results {
		worst = max(worst, rep.Results[i].otherShare())
	}
	return worst
}

// otherShare is the share of the run during which CPU 1 ran something
// other than the proxy (steal included).
func (r *result) otherShare() float64 {
	if r.Seconds == 0 || r.Proxy == "direct" || r.Error != "" {
		return 0
	}
	return max(0, r.CPU1BusySeconds+r.CPU1StealSeconds-r.CPUSeconds) / r.Seconds
}

// otherOnCPU1 is the share of the run during which CPU 1 was busy with
// something other than the proxy (steal included): the noise indicator.
func otherOnCPU1(r *result) string {
	if r.Seconds == 0 || r.Proxy == "direct" {
		return ""
	}
	return fmt.Sprintf("%.1f%%", r.otherShare()*100)
}

func oneLine(s string) string {
	s = strings.TrimSpace(strings.SplitN(s, "\n", 2)[0])
	s = strings.ReplaceAll(s, "|", "/")
	if len(s) > 160 {
		s = s[:160] + "…"
	}
	return s
}

// markdown renders the whole report.
func (rep *report) markdown() string {
	var b strings.Builder
	s := rep.Settings
	fmt.Fprintf(&b, "# Kakehi, nginx and HAProxy side by side: %s\n\n", rep.Started.Format("2006-01-02 15:04 MST"))
	if s.Quick {
		b.WriteString("**Quick run (harness check): short runs, figures not meant for comparison.**\n\n")
	}
	fmt.Fprintf(&b, "- Kakehi revision: `%s`\n", rep.Revision)
	m := rep.Machine
	fmt.Fprintf(&b, "- Machine: %d CPUs, %s, kernel %s, %s RAM, %s; open-files limit %d\n", m.NProc, m.CPUModel, m.Kernel, m.MemTotal, m.Go, m.NoFileLimit)
	fmt.Fprintf(&b, "- Load average at start: %s; at end: %s\n", m.LoadStart, m.LoadEnd)
	names := make([]string, 0, len(rep.Versions))
	for k := range rep.Versions {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fmt.Fprintf(&b, "- %s: %s\n", k, rep.Versions[k])
	}
	fmt.Fprintf(&b, "- Runs: %v measured after a %v warm-up, %d round(s) (median kept), %d connections (HTTP/2: %d × %d streams), a fresh proxy process per run; backend pool %d; forwarded headers on nginx/HAProxy: %v; Kakehi access log: %s\n",
		s.Duration, s.Warmup, s.Rounds, s.Conns, s.H2Clients, s.H2Streams, s.Pool, s.Forwarded, orOff(s.AccessLog))
	rep.tlsHeader(&b)
	b.WriteString("\n")
	if worst := rep.noisiest(); worst > noisyShare {
		fmt.Fprintf(&b, "**Noisy run:** CPU 1 was busy with something other than the proxy for up to %.0f%% of a run (see \"CPU 1 other\"), so these figures are only indicative; rerun on a quiet machine, with -rounds for more than one sample.\n\n", worst*100)
	}
	b.WriteString(method)
	if rep.Failure != "" {
		fmt.Fprintf(&b, "**The run stopped early:** %s\n\n", rep.Failure)
	}
	b.WriteString("## Results\n\n")
	b.WriteString(rep.tables())
	rep.details(&b)
	return b.String()
}

// tlsHeader describes the TLS setup when a TLS scenario ran, with what
// each proxy negotiated.
func (rep *report) tlsHeader(b *strings.Builder) {
	var lines []string
	for _, sc := range rep.Scenarios {
		if !sc.TLS {
			continue
		}
		for _, px := range rep.Settings.Proxies {
			if r := rep.resultOf(sc.Name, px); r != nil && r.TLS != "" {
				lines = append(lines, fmt.Sprintf("  - %s/%s: %s", sc.Name, px, r.TLS))
			}
		}
	}
	if len(lines) == 0 {
		return
	}
	fmt.Fprintf(b, "- TLS: one self-signed ECDSA P-256 certificate for %s made at start, served by all three; TLS 1.2–1.3, server cipher order with AES-128-GCM first (nginx, HAProxy: %s; Kakehi: crypto/tls defaults); session cache and tickets on. What an OpenSSL client (wrk's and h2load's library) negotiated just before each run:\n%s\n",
		benchTLSHost, tls13Suites, strings.Join(lines, "\n"))
}

func orOff(s string) string {
	if s == "" {
		return "off"
	}
	return s
}

// method explains how the figures were taken.
const method = `## Method

Everything runs in a private network namespace: the backend on 198.18.1.1,
the proxies on 127.0.0.1. The backend (nginx, one worker), wrk (one
thread), the driver and, for Kakehi, kube-apiserver and etcd share CPU 0;
the proxy under test is alone on CPU 1 with one worker (nginx
` + "`worker_processes 1`" + `, HAProxy ` + "`nbthread 1`" + `, Kakehi ` + "`GOMAXPROCS=1`" + `).
Proxy CPU is utime+stime from /proc/PID/stat of the proxy's processes
over the measured run, divided by the requests wrk completed (for 1 MiB
bodies: by the MiB of body moved). Throughput is capped by CPU 0 (backend
plus wrk), so CPU per request is the figure to compare; req/s and latency
are shown for completeness. "CPU 1 other" is the share of the run during
which CPU 1 did something other than the proxy (other processes, steal):
above a few percent the run was noisy. Memory per idle connection is the
growth of the proxy's VmRSS after the idle connections each completed one
request, divided by their number.

`

// details appends failures, commands, configurations and raw outputs.
func (rep *report) details(b *strings.Builder) {
	var fails []string
	for px, why := range rep.Skipped {
		fails = append(fails, fmt.Sprintf("- %s skipped: %s", px, strings.ReplaceAll(why, "\n", "\n  ")))
	}
	for _, r := range rep.Results {
		if r.Error != "" {
			fails = append(fails, fmt.Sprintf("- %s/%s failed: %s", r.Scenario, r.Proxy, strings.ReplaceAll(r.Error, "\n", "\n  ")))
		}
	}
	if len(fails) > 0 {
		b.WriteString("## Failures\n\n" + strings.Join(fails, "\n") + "\n\n")
	}
	b.WriteString("## Commands\n\n```sh\n")
	fmt.Fprintf(b, "# backend\n%s\n", rep.Backend.Command)
	for _, key := range rep.setupKeys() {
		if st := rep.Proxies[key]; st.Command != "" {
			fmt.Fprintf(b, "# %s\n%s\n", key, st.Command)
		}
	}
	for _, r := range rep.Results {
		if r.Command != "" {
			fmt.Fprintf(b, "# %s/%s\n%s\n", r.Scenario, r.Proxy, r.Command)
		}
	}
	b.WriteString("```\n\n")
	b.WriteString("## Configurations\n\n")
	config(b, "backend (nginx)", rep.Backend.Config)
	for _, key := range rep.setupKeys() {
		if st := rep.Proxies[key]; st.Config != "" {
			config(b, key, st.Config)
		}
	}
	if rep.find("upload", "nginx") != nil || rep.find("upload", "haproxy") != nil || rep.find("upload", "kakehi") != nil {
		config(b, "upload.lua (wrk)", fmt.Sprintf(uploadScript, uploadBody))
	}
	b.WriteString("## Load generator outputs\n\n")
	for _, r := range rep.Results {
		if r.LoadOutput != "" {
			fmt.Fprintf(b, "<details><summary>%s/%s</summary>\n\n```\n%s\n```\n</details>\n\n", r.Scenario, r.Proxy, strings.TrimSpace(r.LoadOutput))
		}
	}
}

// setupKeys returns the keys of rep.Proxies in the order of -proxies, each
// proxy's HTTP/1.1 setup before its HTTP/2 one.
func (rep *report) setupKeys() []string {
	var keys []string
	for _, px := range rep.Settings.Proxies {
		for _, key := range []string{px, px + " (HTTP/2 scenarios)", px + " (TLS scenarios)"} {
			if _, ok := rep.Proxies[key]; ok {
				keys = append(keys, key)
			}
		}
	}
	return keys
}

func config(b *strings.Builder, name, text string) {
	fmt.Fprintf(b, "<details><summary>%s</summary>\n\n```\n%s\n```\n</details>\n\n", name, strings.TrimSpace(text))
}
