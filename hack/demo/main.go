// Command demo runs Kakehi end to end on this machine: a private network
// namespace holding a real kube-apiserver and etcd, demo backend pods and
// the controller, with the proxy's listener created on the host's loopback
// so that a person can curl it. Ctrl-C stops and removes everything.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/kakehi/kakehi/test/harness"
)

func main() {
	addr := flag.String("listen", "127.0.0.1:8080", "host address of the proxy listener")
	flag.Parse()
	if !harness.InNetNS() {
		os.Exit(parent(*addr))
	}
	if err := child(*addr); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// parent opens the proxy's listener in the host namespace and re-runs the
// demo in a private namespace, handing it the socket as fd 3.
func parent(addr string) int {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "demo: listening on %s: %v (use -listen to pick another address)\n", addr, err)
		return 1
	}
	f, err := l.(*net.TCPListener).File()
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		return 1
	}
	signal.Ignore(os.Interrupt, syscall.SIGTERM) // the child gets them too and cleans up
	code, err := harness.ReexecInNetNS(f)
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
	}
	return code
}

// child runs inside the namespace: control plane, pods, controller.
func child(addr string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := harness.SetupNetNS(); err != nil {
		return err
	}
	say("starting kube-apiserver and etcd (first run builds them: a few minutes)...")
	cp, err := harness.StartControlPlane(filepath.Join(harness.RepoRoot(), "config", "crd"))
	if err != nil {
		return err
	}
	defer func() { say("stopping the control plane"); _ = cp.Stop() }()
	pods, err := startDemo(ctx, cp)
	defer func() {
		for _, p := range pods {
			p.Stop()
		}
	}()
	if err != nil {
		return err
	}
	say("building and starting the controller...")
	readyCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	c, err := harness.StartController(readyCtx, harness.ControllerOptions{
		Kubeconfig: cp.Kubeconfig, ExtraFiles: []*os.File{os.NewFile(3, "listener")},
	})
	if err != nil {
		return err
	}
	defer func() { say("stopping the controller"); c.Stop(); harness.RemoveControllerBinary() }()
	printUsage(addr, c)
	select {
	case <-ctx.Done():
	case <-c.Done():
		return errors.New("controller exited; log: " + c.LogPath)
	}
	return nil
}

// startDemo creates the IngressClass, the demo pods with their Services and
// EndpointSlices, and applies examples/*.yaml.
func startDemo(ctx context.Context, cp *harness.ControlPlane) ([]*harness.Pod, error) {
	var pods []*harness.Pod
	if err := harness.CreateAll(ctx, cp.Client, harness.Namespace("demo"),
		harness.IngressClass("kakehi", "kakehi.dev/ingress-controller", false)); err != nil {
		return nil, err
	}
	for s, svc := range []struct {
		name string
		n    int
	}{{"web", 3}, {"api", 2}} {
		var mine []*harness.Pod
		for i := 0; i < svc.n; i++ {
			p, err := harness.StartPod(svc.name, fmt.Sprintf("%s-%d", svc.name, i), harness.PodIP(s, i), 8080)
			if err != nil {
				return pods, err
			}
			pods, mine = append(pods, p), append(mine, p)
		}
		if err := harness.CreateAll(ctx, cp.Client, harness.Service("demo", svc.name),
			harness.EndpointSlice("demo", svc.name+"-1", svc.name, mine...)); err != nil {
			return pods, err
		}
	}
	files, _ := filepath.Glob(filepath.Join(harness.RepoRoot(), "examples", "*.yaml"))
	for _, f := range files {
		if err := harness.ApplyFile(ctx, cp.Client, f); err != nil {
			return pods, err
		}
	}
	return pods, nil
}

func printUsage(addr string, c *harness.Controller) {
	say("Kakehi is serving on http://%s. Try, from any shell on this machine:", addr)
	for _, cmd := range []string{
		"curl -s -H 'Host: demo.example.com' http://%s/            # web (round robin over 3 pods)",
		"curl -s -H 'Host: demo.example.com' http://%s/api/orders  # api (Prefix /api)",
		"curl -s -H 'Host: demo.example.com' http://%s/healthz     # api (Exact /healthz)",
		"curl -s -H 'Host: shop.apps.example.com' http://%s/       # web (wildcard host)",
		"curl -si -H 'Host: nothing.example.com' http://%s/        # 404: no rule matches",
		"curl -s -H 'Host: demo.example.com' -H 'X-User: ana' http://%s/  # same pod every time (RoutePolicy hash)",
	} {
		fmt.Printf("  "+cmd+"\n", addr)
	}
	say("Controller log: %s. Press Ctrl-C to stop; everything started here is removed.", c.LogPath)
}

func say(format string, args ...any) { fmt.Printf("demo: "+format+"\n", args...) }
