package chart

import (
	"testing"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/lint/support"
)

// TestHelmLintStrict runs `helm lint --strict` through the library: the
// chart's metadata, templates and values must raise no warning.
func TestHelmLintStrict(t *testing.T) {
	l := action.NewLint()
	l.Strict = true
	l.Namespace = releaseNS
	l.KubeVersion = &chartutil.KubeVersion{Version: "v1.37.2", Major: "1", Minor: "37"}
	res := l.Run([]string{chartDir}, map[string]any{})
	for _, m := range res.Messages {
		if m.Severity > support.InfoSev {
			t.Errorf("helm lint: %s", m)
		} else {
			t.Logf("helm lint: %s", m)
		}
	}
	for _, err := range res.Errors {
		t.Errorf("helm lint: %v", err)
	}
}
