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
	if !harness.InNetNS() {
		code, err := harness.ReexecInNetNS()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
		os.Exit(code)
	}
	os.Exit(runInNetNS(m))
}

func runInNetNS(m *testing.M) int {
	if err := harness.SetupNetNS(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	cp, err := harness.StartControlPlane(filepath.Join(harness.RepoRoot(), "config", "crd"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer func() { _ = cp.Stop() }()
	env.cp = cp
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := harness.CreateAll(ctx, cp.Client, harness.IngressClass(className, controllerName, false)); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	ctrl, err := harness.StartController(ctx, harness.ControllerOptions{Kubeconfig: cp.Kubeconfig})
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	env.ctrl = ctrl
	code := m.Run()
	ctrl.Stop()
	harness.RemoveControllerBinary()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "controller log (%s):\n%s\n", ctrl.LogPath, tail(ctrl.Log(), 8000))
	}
	return code
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
