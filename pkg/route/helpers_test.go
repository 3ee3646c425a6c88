package route_test

import (
	"strconv"
	"testing"

	"github.com/kakehi/kakehi/pkg/route"
)

// tgt returns a target whose Ingress field names it, so that tests can say
// which rule matched.
func tgt(name string) *route.Target { return &route.Target{Namespace: "ns", Ingress: name} }

// name returns the label of a matched target, or "" for no match.
func name(t *route.Target) string {
	if t == nil {
		return ""
	}
	return t.Ingress
}

func exact(path, label string) route.Rule {
	return route.Rule{Kind: route.PathExact, Path: path, Target: tgt(label)}
}

func prefix(path, label string) route.Rule {
	return route.Rule{Kind: route.PathPrefix, Path: path, Target: tgt(label)}
}

// hostRule is one rule under one host, for building tables in tests.
type hostRule struct {
	host string
	rule route.Rule
}

// build builds a table from rules, failing the test on a duplicate.
func build(t testing.TB, rules ...hostRule) *route.Table {
	t.Helper()
	b := route.NewBuilder(1)
	for _, r := range rules {
		if !b.Add(r.host, r.rule) {
			t.Fatalf("Add(%q, %s %s) reported a duplicate", r.host, r.rule.Kind, r.rule.Path)
		}
	}
	return b.Build()
}

// backends returns n live backends from a fresh registry, with addresses
// 10.0.0.1:80, 10.0.0.2:80, ...
func backends(n int) (*route.Generation, []*route.Backend) {
	g := route.NewRegistry(nil).Begin()
	out := make([]*route.Backend, n)
	for i := range out {
		out[i] = g.Backend(addr(i), "")
	}
	return g, out
}

func addr(i int) string { return "10.0.0." + strconv.Itoa(i+1) + ":80" }
