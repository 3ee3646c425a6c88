package chart

import (
	"os"
	"testing"

	"sigs.k8s.io/yaml"
)

func TestZZPrint(t *testing.T) {
	r := mustRender(t, "kakehi", os.Getenv("VALS"))
	for _, o := range r.Objects {
		b, _ := yaml.Marshal(o.Object)
		t.Logf("---\n%s", b)
	}
	t.Log(r.Notes)
}
