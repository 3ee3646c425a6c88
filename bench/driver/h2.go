package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// h2loadArgv returns the command line of an h2load run of sc against an
// h2c address (or, for the TLS scenarios, a TLS one, reached by
// --connect-to with benchTLSHost as server name and authority, h2 by
// ALPN): one thread on loadCPU, clients connections with streams
// concurrent streams each, for d; logPath (when not empty) receives one
// line per request, from which the percentiles are computed.
func h2loadArgv(sc *scenario, addr string, clients, streams int, d time.Duration, logPath string) []string {
	argv := []string{"taskset", "-c", strconv.Itoa(loadCPU), "h2load", "-t1",
		"-c" + strconv.Itoa(clients), "-m" + strconv.Itoa(streams), "-D" + wrkDuration(d), "-T5s"}
	if logPath != "" {
		argv = append(argv, "--log-file="+logPath)
	}
	if sc.TLS {
		port := addr[strings.LastIndex(addr, ":")+1:]
		return append(argv, "--connect-to="+addr, "https://"+benchTLSHost+":"+port+sc.Path)
	}
	return append(argv, "http://"+addr+sc.Path)
}

// runH2load runs h2load, bounded by its -D and a timeout 30 s past it, and
// parses its summary and (when logPath is set) its per-request log.
func runH2load(ctx context.Context, argv []string, d time.Duration, logPath string) (loadResult, error) {
	ctx, cancel := context.WithTimeout(ctx, d+30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	text := trimH2loadProgress(string(out))
	if err != nil {
		return loadResult{Raw: text}, fmt.Errorf("%s: %v: %s", strings.Join(argv, " "), err, firstLines(text, 10))
	}
	r, err := parseH2load(text)
	if err == nil && r.Requests == 0 {
		err = fmt.Errorf("h2load completed no request (does the proxy speak h2c with prior knowledge, or h2 over TLS?): %s", firstLines(strings.TrimSpace(text), 8))
	}
	if err == nil && strings.Contains(text, "Application protocol:") && !strings.Contains(text, "Application protocol: h2\n") {
		err = fmt.Errorf("h2load did not negotiate h2 by ALPN: %s", firstLines(strings.TrimSpace(text), 8))
	}
	if err != nil || logPath == "" {
		return r, err
	}
	f, err := os.Open(logPath)
	if err != nil {
		return r, err
	}
	defer f.Close()
	r.P50, r.P99, err = logPercentiles(f)
	_ = os.Remove(logPath)
	return r, err
}

// trimH2loadProgress drops h2load's per-thread progress lines.
func trimH2loadProgress(out string) string {
	var keep []string
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "progress: ") || strings.Contains(line, "for thread #") {
			continue
		}
		keep = append(keep, line)
	}
	return strings.Join(keep, "\n")
}

var (
	reH2Finished = regexp.MustCompile(`finished in ([\d.]+)(us|ms|s|m|h), ([\d.]+) req/s`)
	reH2Requests = regexp.MustCompile(`requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout`)
	reH2Status   = regexp.MustCompile(`status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx`)
	reH2Mean     = regexp.MustCompile(`time for request:\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)\s`)
)

// parseH2load parses h2load's summary. Requests are those done; errors
// are failed, errored and timed-out ones; non-2xx are 3xx, 4xx and 5xx.
func parseH2load(out string) (loadResult, error) {
	r := loadResult{Raw: out}
	m := reH2Finished.FindStringSubmatch(out)
	n := reH2Requests.FindStringSubmatch(out)
	if m == nil || n == nil {
		return r, fmt.Errorf("h2load report without a summary: %s", firstLines(out, 10))
	}
	r.Elapsed = wrkTime(m[1], m[2])
	r.RPS, _ = strconv.ParseFloat(m[3], 64)
	r.Requests, _ = strconv.ParseInt(n[1], 10, 64)
	for _, s := range n[3:] {
		v, _ := strconv.ParseInt(s, 10, 64)
		r.SocketErrors += v
	}
	if s := reH2Status.FindStringSubmatch(out); s != nil {
		for _, v := range s[2:] {
			c, _ := strconv.ParseInt(v, 10, 64)
			r.Non2xx += c
		}
	}
	if a := reH2Mean.FindStringSubmatch(out); a != nil {
		r.Avg = wrkTime(a[1], a[2])
	}
	return r, nil
}

// logPercentiles reads h2load's --log-file (start µs, status, duration µs
// per line) and returns the 50th and 99th percentile durations.
func logPercentiles(f *os.File) (time.Duration, time.Duration, error) {
	var durs []int64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), "\t")
		if len(fields) < 3 {
			continue
		}
		v, err := strconv.ParseInt(strings.TrimSpace(fields[2]), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("h2load log %s: %q: %w", filepath.Base(f.Name()), sc.Text(), err)
		}
		durs = append(durs, v)
	}
	if err := sc.Err(); err != nil {
		return 0, 0, err
	}
	if len(durs) == 0 {
		return 0, 0, fmt.Errorf("h2load log %s is empty", filepath.Base(f.Name()))
	}
	slices.Sort(durs)
	pct := func(p float64) time.Duration {
		i := min(len(durs)-1, int(p*float64(len(durs))))
		return time.Duration(durs[i]) * time.Microsecond
	}
	return pct(0.50), pct(0.99), nil
}
