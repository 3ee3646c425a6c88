package chart

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"testing"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	kubefake "helm.sh/helm/v3/pkg/kube/fake"
	"helm.sh/helm/v3/pkg/storage"
	"helm.sh/helm/v3/pkg/storage/driver"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// releaseNS is the namespace every test release is installed into.
const releaseNS = "kakehi-system"

var (
	loadOnce  sync.Once
	loaded    *chart.Chart
	loadError error
)

// loadChart loads deploy/helm/kakehi once per test binary.
func loadChart(t *testing.T) *chart.Chart {
	t.Helper()
	loadOnce.Do(func() { loaded, loadError = loader.LoadDir(chartDir) })
	if loadError != nil {
		t.Fatalf("loading chart: %v", loadError)
	}
	return loaded
}

// Rendered is a chart rendered as `helm install --dry-run` would: the
// manifest's objects in order, and NOTES.txt.
type Rendered struct {
	Objects []*unstructured.Unstructured
	Notes   string
}

// renderChart renders the chart as release name in releaseNS with the
// values given as YAML, through action.Install in client-only dry-run mode:
// values.schema.json is enforced, templates run, nothing is sent anywhere.
func renderChart(t *testing.T, name, valuesYAML string) (*Rendered, error) {
	t.Helper()
	ch := loadChart(t)
	vals := map[string]any{}
	if err := yaml.Unmarshal([]byte(valuesYAML), &vals); err != nil {
		t.Fatalf("values: %v", err)
	}
	caps := chartutil.DefaultCapabilities.Copy()
	cfg := &action.Configuration{
		Releases:     storage.Init(driver.NewMemory()),
		KubeClient:   &kubefake.PrintingKubeClient{Out: io.Discard},
		Capabilities: caps,
		Log:          func(string, ...any) {},
	}
	inst := action.NewInstall(cfg)
	inst.DryRun, inst.ClientOnly = true, true
	inst.ReleaseName, inst.Namespace = name, releaseNS
	inst.KubeVersion = &chartutil.KubeVersion{Version: "v1.37.2", Major: "1", Minor: "37"}
	rel, err := inst.Run(ch, vals)
	if err != nil {
		return nil, err
	}
	objs, err := decodeManifest(rel.Manifest)
	if err != nil {
		return nil, err
	}
	return &Rendered{Objects: objs, Notes: rel.Info.Notes}, nil
}

// mustRender is renderChart that fails the test on an error.
func mustRender(t *testing.T, name, valuesYAML string) *Rendered {
	t.Helper()
	r, err := renderChart(t, name, valuesYAML)
	if err != nil {
		t.Fatalf("rendering with values\n%s\n: %v", valuesYAML, err)
	}
	return r
}

// decodeManifest splits a multi-document manifest into objects.
func decodeManifest(manifest string) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(manifest), 4096)
	var out []*unstructured.Unstructured
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("decoding manifest: %w", err)
		}
		if len(u.Object) > 0 {
			out = append(out, u)
		}
	}
}

// Kinds returns "Kind/namespace/name" of every object, sorted.
func (r *Rendered) Kinds() []string {
	var out []string
	for _, o := range r.Objects {
		out = append(out, fmt.Sprintf("%s/%s/%s", o.GetKind(), o.GetNamespace(), o.GetName()))
	}
	sort.Strings(out)
	return out
}

// OfKind returns the objects of kind, in manifest order.
func (r *Rendered) OfKind(kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range r.Objects {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

// One returns the only object of kind, failing the test otherwise.
func (r *Rendered) One(t *testing.T, kind string) *unstructured.Unstructured {
	t.Helper()
	objs := r.OfKind(kind)
	if len(objs) != 1 {
		t.Fatalf("want one %s, rendered %d: %v", kind, len(objs), r.Kinds())
	}
	return objs[0]
}

// into converts u into a typed object.
func into[T any](t *testing.T, u *unstructured.Unstructured) *T {
	t.Helper()
	out := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, out, true); err != nil {
		t.Fatalf("converting %s %s: %v", u.GetKind(), u.GetName(), err)
	}
	return out
}

// warnings records the API server's warnings (deprecations, Pod Security
// "warn" mode) seen by one client.
type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) HandleWarningHeaderWithContext(_ context.Context, _ int, _ string, msg string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, msg)
}

func (w *warnings) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.msgs
	w.msgs = nil
	return out
}

// warningClient returns an admin client that records warnings.
func warningClient(t *testing.T) (client.Client, *warnings) {
	t.Helper()
	w := &warnings{}
	cfg := rest.CopyConfig(env.cp.Config)
	cfg.WarningHandlerWithContext = w
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c, w
}

// yamlOf renders an object for failure messages.
func yamlOf(o any) string {
	b, err := yaml.Marshal(o)
	if err != nil {
		return err.Error()
	}
	return string(bytes.TrimSpace(b))
}
