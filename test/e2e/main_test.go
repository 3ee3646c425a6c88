// Package e2e runs Kakehi end to end: a real kube-apiserver and etcd, the
// controller binary, backend pods as real HTTP servers on 198.18.x.y, and
// real HTTP clients, all inside a private network namespace that the test
// binary creates for itself (see test/harness).
package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kakehi/kakehi/test/harness"
)

const (
	className      = "kakehi"
	controllerName = "kakehi.dev/ingress-controller"
)

// env is the shared control plane and controller of the package's tests.
var env struct {
	cp   *harness.ControlPlane
	ctrl *harness.Controller
}

func TestMain(m *testing.M) {
	harness.Main(m, "e2e", []string{filepath.Join(harness.RepoRoot(), "config", "crd")}, startShared)
}

// startShared creates our IngressClass and starts the controller the tests
// share; its teardown stops it and prints its log when a test failed.
func startShared(cp *harness.ControlPlane) (func(int), error) {
	env.cp = cp
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := harness.CreateAll(ctx, cp.Client, harness.IngressClass(className, controllerName, false)); err != nil {
		return nil, err
	}
	ctrl, err := harness.StartController(ctx, harness.ControllerOptions{Kubeconfig: cp.Kubeconfig})
	if err != nil {
		return nil, err
	}
	env.ctrl = ctrl
	return func(code int) {
		ctrl.Stop()
		if code != 0 {
			fmt.Fprintf(os.Stderr, "controller log (%s):\n%s\n", ctrl.LogPath, tail(ctrl.Log(), 8000))
		}
	}, nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
