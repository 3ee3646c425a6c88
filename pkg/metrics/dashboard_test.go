package metrics

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// registered returns every metric name the process registers, with its
// variable label names.
func registered(t *testing.T) map[string]map[string]bool {
	t.Helper()
	descs := make(chan *prometheus.Desc, 256)
	go func() {
		for _, c := range []interface{ Describe(chan<- *prometheus.Desc) }{collectors(NewProxy()), collectors(NewReconcile())} {
			c.Describe(descs)
		}
		close(descs)
	}()
	nameRE := regexp.MustCompile(`fqName: "([^"]+)"`)
	labelsRE := regexp.MustCompile(`variableLabels: \{([^}]*)\}`)
	out := map[string]map[string]bool{}
	for d := range descs {
		s := d.String()
		m := nameRE.FindStringSubmatch(s)
		if m == nil {
			t.Fatalf("cannot read %s", s)
		}
		labels := map[string]bool{"job": true, "instance": true, "le": true}
		if l := labelsRE.FindStringSubmatch(s); l != nil {
			for _, name := range strings.Split(l[1], ",") {
				if name = strings.TrimSpace(name); name != "" {
					labels[name] = true
				}
			}
		}
		out[m[1]] = labels
	}
	return out
}

// collectors registers r's collectors on a fresh registry and returns it.
func collectors(r interface {
	Register(prometheus.Registerer) error
}) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	if err := r.Register(reg); err != nil {
		panic(err)
	}
	return reg
}

// TestDashboardQueriesUseOnlyMetricsThatExist reads every expression of
// the Grafana dashboard and checks each kakehi_ metric it names (histogram
// series suffixes stripped) and each label it filters or groups by.
func TestDashboardQueriesUseOnlyMetricsThatExist(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "deploy", "grafana", "kakehi-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatal(err)
	}
	known := registered(t)
	metricRE := regexp.MustCompile(`kakehi_[a-z0-9_]+`)
	selectorRE := regexp.MustCompile(`(kakehi_[a-z0-9_]+)\{([^}]*)\}`)
	byRE := regexp.MustCompile(`by \(([^)]*)\)`)
	exprs := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			exprs++
			for _, name := range metricRE.FindAllString(tg.Expr, -1) {
				if known[baseName(name)] == nil {
					t.Errorf("panel %q uses %s, which no collector registers", p.Title, name)
				}
			}
			for _, m := range selectorRE.FindAllStringSubmatch(tg.Expr, -1) {
				labels := known[baseName(m[1])]
				for _, matcher := range strings.Split(m[2], ",") {
					key := strings.TrimSpace(strings.FieldsFunc(matcher, func(r rune) bool { return r == '=' || r == '!' || r == '~' })[0])
					if labels != nil && !labels[key] {
						t.Errorf("panel %q filters %s on label %q, which it does not have", p.Title, m[1], key)
					}
				}
			}
			for _, m := range byRE.FindAllStringSubmatch(tg.Expr, -1) {
				for _, key := range strings.Split(m[1], ",") {
					if key = strings.TrimSpace(key); !anyHasLabel(known, metricRE.FindAllString(tg.Expr, -1), key) {
						t.Errorf("panel %q groups by %q, which none of its metrics has", p.Title, key)
					}
				}
			}
		}
	}
	if exprs < 10 {
		t.Errorf("only %d queries found: the dashboard lost its panels", exprs)
	}
}

func baseName(n string) string {
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if b, ok := strings.CutSuffix(n, suffix); ok {
			return b
		}
	}
	return n
}

func anyHasLabel(known map[string]map[string]bool, names []string, label string) bool {
	for _, n := range names {
		if known[baseName(n)][label] {
			return true
		}
	}
	return false
}

// TestMetricsDocListsEveryMetric keeps docs/metrics.md and the collectors
// in step: every registered metric is documented, and every kakehi_ name
// the page mentions exists.
func TestMetricsDocListsEveryMetric(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "docs", "metrics.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	known := registered(t)
	for name := range known {
		if !strings.Contains(doc, "`"+name+"`") {
			t.Errorf("docs/metrics.md does not document %s", name)
		}
	}
	for _, name := range regexp.MustCompile("`(kakehi_[a-z0-9_]+)`").FindAllStringSubmatch(doc, -1) {
		if known[baseName(name[1])] == nil {
			t.Errorf("docs/metrics.md documents %s, which no collector registers", name[1])
		}
	}
}
