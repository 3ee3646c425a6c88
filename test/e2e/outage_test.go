package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kakehi/kakehi/test/harness"
)

// loader sends GETs one after another until stopped or until its bounds
// (count and time) are reached, counting successes and failures.
type loader struct {
	ok, failed atomic.Int64
	firstErr   atomic.Value
	stop       chan struct{}
	done       sync.WaitGroup
}

func startLoad(addr, host, svc string, maxRequests int, maxTime time.Duration) *loader {
	l := &loader{stop: make(chan struct{})}
	l.done.Add(1)
	go func() {
		defer l.done.Done()
		deadline := time.Now().Add(maxTime)
		for i := 0; i < maxRequests && time.Now().Before(deadline); i++ {
			select {
			case <-l.stop:
				return
			default:
			}
			r, err := do(addr, "GET", host, "/", "")
			if err == nil && (r.Echo == nil || r.Echo.Service != svc) {
				err = errStatus(r)
			}
			if err != nil {
				l.failed.Add(1)
				l.firstErr.CompareAndSwap(nil, err.Error())
				continue
			}
			l.ok.Add(1)
		}
	}()
	return l
}

// finish stops the load and returns its counts.
func (l *loader) finish() (ok, failed int64) {
	close(l.stop)
	l.done.Wait()
	return l.ok.Load(), l.failed.Load()
}

// waitMore waits until n more requests have succeeded.
func (l *loader) waitMore(t *testing.T, n int64) {
	t.Helper()
	target := l.ok.Load() + n
	eventually(t, 30*time.Second, func() error {
		if l.ok.Load() < target {
			return fmt.Errorf("%d of %d requests done (%d failed)", l.ok.Load(), target, l.failed.Load())
		}
		return nil
	})
}

// TestAPIServerOutageKeepsTrafficFlowing stops kube-apiserver under load:
// the last table keeps serving with no failed request, the config-age
// metric is exposed, and once the API server is back a new Ingress goes
// live without restarting the controller.
func TestAPIServerOutageKeepsTrafficFlowing(t *testing.T) {
	ctx := context.Background()
	newBackends(t, "outage", 2, "steady")
	ing := harness.Ingress("outage", "steady", className, harness.Rule("outage.test", harness.Path(prefix, "/", "steady")))
	if err := harness.CreateAll(ctx, env.cp.Client, ing); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, routesTo("outage.test", "/", "steady", ""))
	load := startLoad(env.ctrl.HTTPAddr, "outage.test", "steady", 200000, 2*time.Minute)
	load.waitMore(t, 50)
	if err := env.cp.StopAPIServer(); err != nil {
		t.Fatal(err)
	}
	stopped := true
	defer func() {
		if stopped {
			_ = env.cp.StartAPIServer()
		}
	}()
	load.waitMore(t, 500)                        // served while the API server is down
	eventually(t, 10*time.Second, func() error { // the age rises while the API server is away
		if age := metricValue(scrape(t), "kakehi_config_age_seconds"); age < 0.5 {
			return fmt.Errorf("kakehi_config_age_seconds = %v, want it rising past 0.5", age)
		}
		return nil
	})
	if err := env.cp.StartAPIServer(); err != nil {
		t.Fatal(err)
	}
	stopped = false
	load.waitMore(t, 50)
	ok, failed := load.finish()
	t.Logf("%d requests served across the outage, %d failed", ok, failed)
	if failed != 0 {
		t.Errorf("%d requests failed during the API server outage (first: %v)", failed, load.firstErr.Load())
	}
	after := harness.Ingress("outage", "after", className, harness.Rule("after-outage.test", harness.Path(prefix, "/", "steady")))
	eventually(t, 60*time.Second, func() error { return env.cp.Client.Create(ctx, after) })
	eventually(t, 60*time.Second, routesTo("after-outage.test", "/", "steady", ""))
}

// metricValue returns the value of an unlabelled metric on a /metrics
// page, or -1000 when it is missing.
func metricValue(page, name string) float64 {
	for _, line := range strings.Split(page, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return f
			}
		}
	}
	return -1000
}

// scrape returns the controller's /metrics page.
func scrape(t *testing.T) string {
	t.Helper()
	resp, err := http.Get("http://" + env.ctrl.Metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
