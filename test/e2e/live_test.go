package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kakehi/kakehi/test/harness"
)

// liveRounds is how many times each kind of change is measured.
const liveRounds = 10

// latencies collects change-to-live samples by kind of change.
type latencies map[string][]time.Duration

// measure runs write (the API write) and then polls live until it returns
// nil, recording the time from just before the write to the first request
// that saw the change.
func (l latencies) measure(t *testing.T, kind string, write func() error, live func() error) {
	t.Helper()
	start := time.Now()
	if err := write(); err != nil {
		t.Fatalf("%s: %v", kind, err)
	}
	deadline := start.Add(10 * time.Second)
	for {
		err := live()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: change not live after 10s: %v", kind, err)
		}
	}
	l[kind] = append(l[kind], time.Since(start))
}

// TestLiveChangesTakeEffectWithoutRestart creates, edits and deletes an
// Ingress and adds and removes endpoints, each liveRounds times, timing
// each from the API write to the first request that sees it.
func TestLiveChangesTakeEffectWithoutRestart(t *testing.T) {
	ctx := context.Background()
	c := env.cp.Client
	bs := newBackends(t, "live", 2, "live-a", "live-b")
	l := latencies{}
	for i := 0; i < liveRounds; i++ {
		host := fmt.Sprintf("r%d.live.test", i)
		ing := harness.Ingress("live", fmt.Sprintf("live-%d", i), className, harness.Rule(host, harness.Path(prefix, "/", "live-a")))
		l.measure(t, "ingress-create", func() error { return c.Create(ctx, ing) }, routesTo(host, "/", "live-a", ""))
		l.measure(t, "ingress-edit", func() error {
			ing.Spec.Rules[0].HTTP.Paths[0].Backend.Service.Name = "live-b"
			return c.Update(ctx, ing)
		}, routesTo(host, "/", "live-b", ""))
		l.measure(t, "ingress-delete", func() error { return c.Delete(ctx, ing) }, answers(host, "/", http.StatusNotFound))
	}
	// Endpoints: live-a's slice alternates between pod 0 alone and pods 0+1.
	host := "endpoints.live.test"
	ing := harness.Ingress("live", "endpoints", className, harness.Rule(host, harness.Path(prefix, "/", "live-a")))
	if err := c.Create(ctx, ing); err != nil {
		t.Fatal(err)
	}
	p0, p1 := bs.pods["live-a"][0], bs.pods["live-a"][1]
	setPods(t, "live-a-1", p0)
	eventually(t, 10*time.Second, onlyPod(host, p0.Name))
	for i := 0; i < liveRounds; i++ {
		l.measure(t, "endpoint-add", func() error { return updatePods("live-a-1", p0, p1) }, seesPod(host, p1.Name))
		l.measure(t, "endpoint-remove", func() error { return updatePods("live-a-1", p0) }, onlyPod(host, p0.Name))
	}
	report(t, l)
}

// seesPod returns nil once a request to host is answered by pod.
func seesPod(host, pod string) func() error {
	return func() error {
		for i := 0; i < 2; i++ { // round robin over at most two pods
			if r, err := get(host, "/"); err == nil && r.Echo != nil && r.Echo.Pod == pod {
				return nil
			}
		}
		return fmt.Errorf("pod %s not seen", pod)
	}
}

// onlyPod returns nil once two consecutive requests (round robin over the
// old set of two) are both answered by pod.
func onlyPod(host, pod string) func() error {
	return func() error {
		for i := 0; i < 2; i++ {
			r, err := get(host, "/")
			if err != nil || r.Echo == nil || r.Echo.Pod != pod {
				return fmt.Errorf("request %d not answered by %s", i, pod)
			}
		}
		return nil
	}
}

func setPods(t *testing.T, slice string, pods ...*harness.Pod) {
	t.Helper()
	if err := updatePods(slice, pods...); err != nil {
		t.Fatal(err)
	}
}

// updatePods replaces the endpoints of EndpointSlice live/slice with pods.
func updatePods(slice string, pods ...*harness.Pod) error {
	ctx := context.Background()
	var es discoveryv1.EndpointSlice
	if err := env.cp.Client.Get(ctx, client.ObjectKey{Namespace: "live", Name: slice}, &es); err != nil {
		return err
	}
	es.Endpoints = es.Endpoints[:0]
	for _, p := range pods {
		es.Endpoints = append(es.Endpoints, harness.Endpoint(p, true))
	}
	return env.cp.Client.Update(ctx, &es)
}

// report logs median and worst per kind, writes them to
// .cache/e2e/latency.json, and fails when the median misses the 50 ms target
// or any change took over a second.
func report(t *testing.T, l latencies) {
	type stat struct {
		Samples  int     `json:"samples"`
		MedianMS float64 `json:"median_ms"`
		P99MS    float64 `json:"p99_ms"`
		WorstMS  float64 `json:"worst_ms"`
	}
	out := map[string]stat{}
	for kind, ds := range l {
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		s := stat{len(ds), ms(ds[len(ds)/2]), ms(ds[(len(ds)*99-1)/100]), ms(ds[len(ds)-1])}
		out[kind] = s
		t.Logf("%-16s n=%d median=%.1fms p99=%.1fms worst=%.1fms", kind, s.Samples, s.MedianMS, s.P99MS, s.WorstMS)
		if s.MedianMS > 50 || s.WorstMS > 1000 {
			t.Errorf("%s: median %.1fms (target ≤ 50ms), worst %.1fms (limit 1s)", kind, s.MedianMS, s.WorstMS)
		}
	}
	dir := filepath.Join(harness.RepoRoot(), ".cache", "e2e")
	if err := os.MkdirAll(dir, 0o755); err == nil {
		b, _ := json.MarshalIndent(out, "", "  ")
		_ = os.WriteFile(filepath.Join(dir, "latency.json"), b, 0o644)
	}
}
