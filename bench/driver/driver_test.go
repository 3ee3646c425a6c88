package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const wrkSample = `Running 2s test @ http://198.18.1.1:8080/small
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.12ms  440.43us   5.33ms   82.49%
    Req/Sec    57.35k    16.25k   73.33k    65.00%
  Latency Distribution
     50%  910.00us
     75%    1.19ms
     90%    1.75ms
     99%    2.72ms
  113840 requests in 2.00s, 30.40MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 7
Requests/sec:  56852.91
Transfer/sec:     15.18MB
`

func TestParseWrk(t *testing.T) {
	r, err := parseWrk(wrkSample)
	if err != nil {
		t.Fatal(err)
	}
	want := loadResult{
		Requests: 113840, Elapsed: 2 * time.Second, RPS: 56852.91,
		Avg: 1120 * time.Microsecond, P50: 910 * time.Microsecond, P99: 2720 * time.Microsecond,
		Non2xx: 7, SocketErrors: 3, Raw: wrkSample,
	}
	if r != want {
		t.Fatalf("parseWrk:\n got %+v\nwant %+v", r, want)
	}
}

func TestParseWrkRejectsMissingParts(t *testing.T) {
	if _, err := parseWrk("unable to connect to 127.0.0.1:1 Connection refused\n"); err == nil {
		t.Error("a report without a request count parsed")
	}
	noLatency := strings.Replace(wrkSample, "     99%    2.72ms\n", "", 1)
	if _, err := parseWrk(noLatency); err == nil {
		t.Error("a report without p99 parsed")
	}
}

func TestWrkTimeUnits(t *testing.T) {
	for in, want := range map[[2]string]time.Duration{
		{"12.5", "us"}: 12500 * time.Nanosecond,
		{"3", "ms"}:    3 * time.Millisecond,
		{"1.5", "s"}:   1500 * time.Millisecond,
		{"2", "m"}:     2 * time.Minute,
		{"x", "s"}:     0,
	} {
		if got := wrkTime(in[0], in[1]); got != want {
			t.Errorf("wrkTime(%q, %q) = %v, want %v", in[0], in[1], got, want)
		}
	}
}

func TestWrkDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		10 * time.Second:        "10s",
		1500 * time.Millisecond: "2s",
		100 * time.Millisecond:  "1s",
	} {
		if got := wrkDuration(d); got != want {
			t.Errorf("wrkDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestParseStat(t *testing.T) {
	// A name with spaces and a parenthesis must not shift the fields.
	line := "4242 (nginx: wo) ker) S 4241 4241 4241 0 -1 4194624 100 0 0 0 1234 567 0 0 20 0 1 0 100 0 0\n"
	st, err := parseStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if st.PPID != 4241 || st.Ticks != 1234+567 {
		t.Fatalf("parseStat = %+v, want ppid 4241 and 1801 ticks", st)
	}
	if _, err := parseStat([]byte("4242 (x) S 1 2")); err == nil {
		t.Error("a short stat line parsed")
	}
}

func TestParseCPUStat(t *testing.T) {
	stat := "cpu  10 0 10 100 0 0 0 0 0 0\ncpu0 5 0 5 50 0 0 0 0 0 0\ncpu1 7 1 3 40 2 1 1 4 0 0\nintr 1\n"
	st, err := parseCPUStat([]byte(stat), 1)
	if err != nil {
		t.Fatal(err)
	}
	if want := (cpuStat{Busy: 7 + 1 + 3, IRQ: 1 + 1, Idle: 40 + 2, Steal: 4}); st != want {
		t.Fatalf("parseCPUStat = %+v, want %+v", st, want)
	}
	if _, err := parseCPUStat([]byte(stat), 3); err == nil {
		t.Error("a missing CPU parsed")
	}
}

func TestParseSettings(t *testing.T) {
	s, err := parseSettings([]string{"-quick", "-proxies", "nginx, haproxy", "-scenarios", "small"})
	if err != nil {
		t.Fatal(err)
	}
	if s.Duration != 2*time.Second || s.Warmup != time.Second || s.IdleConns != 1000 {
		t.Errorf("-quick did not shorten the runs: %+v", s)
	}
	if strings.Join(s.Proxies, ",") != "nginx,haproxy" || strings.Join(s.Scenarios, ",") != "small" {
		t.Errorf("lists: %v %v", s.Proxies, s.Scenarios)
	}
	s, err = parseSettings([]string{"-quick", "-duration", "5s"})
	if err != nil || s.Duration != 5*time.Second {
		t.Errorf("-duration with -quick: %v, %v", s, err)
	}
	for _, bad := range [][]string{
		{"-proxies", "envoy"},
		{"-scenarios", "huge"},
		{"-duration", "100ms"},
		{"-connections", "0"},
		{"extra"},
	} {
		if _, err := parseSettings(bad); err == nil {
			t.Errorf("parseSettings(%q) accepted", bad)
		}
	}
}

func TestTablesRatios(t *testing.T) {
	s, err := parseSettings([]string{"-proxies", "kakehi,nginx,haproxy", "-scenarios", "small,idle"})
	if err != nil {
		t.Fatal(err)
	}
	rep := &report{Settings: s, Skipped: map[string]string{}}
	for _, n := range s.Scenarios {
		rep.Scenarios = append(rep.Scenarios, *findScenario(n))
	}
	rep.add(result{Scenario: "small", Proxy: "kakehi", RPS: 60000, CPUPerReqUs: 15, P50Us: 1000, P99Us: 3000, Seconds: 10})
	rep.add(result{Scenario: "small", Proxy: "nginx", RPS: 75000, CPUPerReqUs: 12.5, P50Us: 800, P99Us: 2000, Seconds: 10})
	rep.add(result{Scenario: "small", Proxy: "haproxy", Error: "haproxy exited"})
	rep.add(result{Scenario: "idle", Proxy: "kakehi", Idle: &idleResult{Wanted: 10, Answered: 10, BaseKiB: 100, AfterKiB: 180}})
	rep.add(result{Scenario: "idle", Proxy: "nginx", Idle: &idleResult{Wanted: 10, Answered: 10, BaseKiB: 100, AfterKiB: 110}})
	out := rep.tables()
	for _, want := range []string{
		"| kakehi | 60000 | 15.00 | 1.00 ms | 3.00 ms | 1.20× | 0.80× | 1.25× | 1.50× |",
		"| haproxy | failed: haproxy exited |",
		"| kakehi | 10 | 0 | 100 KiB | 180 KiB | 8.00 | 8.00× |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("tables lack %q:\n%s", want, out)
		}
	}
}

const h2loadSample = `starting benchmark...
spawning thread #0: 4 total client(s). Timing-based test with 0s of warm-up time and 2s of main duration for measurements.
Application protocol: h2c

finished in 2.00s, 15964.00 req/s, 2.69MB/s
requests: 31928 total, 32028 started, 31928 done, 31900 succeeded, 20 failed, 5 errored, 3 timeout
status codes: 31900 2xx, 1 3xx, 2 4xx, 3 5xx
traffic: 5.39MB (5651452) total, 3.53MB (3703648) headers (space savings 34.09%), 1.31MB (1372904) data
                     min         max         mean         sd        +/- sd
time for request:      936us    135.10ms      6.13ms      9.36ms    96.75%
time for connect:       48us       110us        81us        26us    50.00%
`

func TestParseH2load(t *testing.T) {
	r, err := parseH2load(h2loadSample)
	if err != nil {
		t.Fatal(err)
	}
	want := loadResult{Requests: 31928, Elapsed: 2 * time.Second, RPS: 15964, Avg: 6130 * time.Microsecond,
		Non2xx: 6, SocketErrors: 28, Raw: h2loadSample}
	if r != want {
		t.Fatalf("parseH2load:\n got %+v\nwant %+v", r, want)
	}
	if _, err := parseH2load("connect: Connection refused\n"); err == nil {
		t.Error("a report without a summary parsed")
	}
}

func TestLogPercentiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "h2load.log")
	var b strings.Builder
	for i := 100; i >= 1; i-- { // 1..100 µs, out of order
		fmt.Fprintf(&b, "1700000000%06d\t200\t%d\n", i, i)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p50, p99, err := logPercentiles(f)
	if err != nil {
		t.Fatal(err)
	}
	if p50 != 51*time.Microsecond || p99 != 100*time.Microsecond {
		t.Fatalf("p50 %v, p99 %v; want 51µs and 100µs", p50, p99)
	}
}

func TestAddMediansKeepsMedianRound(t *testing.T) {
	s, err := parseSettings([]string{"-proxies", "nginx", "-scenarios", "small", "-rounds", "3"})
	if err != nil {
		t.Fatal(err)
	}
	r := &run{s: s, report: &report{Settings: s, Skipped: map[string]string{}}}
	runs := map[string][]result{"nginx": {
		{Proxy: "nginx", Round: 1, CPUPerReqUs: 14},
		{Proxy: "nginx", Round: 2, Error: "wrk failed"},
		{Proxy: "nginx", Round: 3, CPUPerReqUs: 12},
		{Proxy: "nginx", Round: 4, CPUPerReqUs: 13},
	}}
	r.addMedians(findScenario("small"), runs)
	if len(r.report.Results) != 1 {
		t.Fatalf("%d results, want 1", len(r.report.Results))
	}
	got := r.report.Results[0]
	if got.Round != 4 || got.FailedRounds != 1 || fmt.Sprint(got.RoundFigures) != "[12 13 14]" {
		t.Fatalf("median: %+v", got)
	}
}

func TestParseStubStatus(t *testing.T) {
	page := "Active connections: 3 \nserver accepts handled requests\n 1234 1234 99999 \nReading: 0 Writing: 1 Waiting: 2 \n"
	n, err := parseStubStatus(page)
	if err != nil || n != 1234 {
		t.Fatalf("parseStubStatus = %d, %v; want 1234", n, err)
	}
	if _, err := parseStubStatus("<html>404</html>"); err == nil {
		t.Error("a page without counters parsed")
	}
}
