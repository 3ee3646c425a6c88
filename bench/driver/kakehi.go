package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/kakehi/kakehi/test/harness"
)

// Names of the Kubernetes objects that route every request to the backend.
const (
	benchNamespace = "bench"
	benchService   = "backend"
)

// startControlPlane starts kube-apiserver and etcd in the namespace (on
// loadCPU, inherited from the driver) and creates an IngressClass, a
// Service, an EndpointSlice holding the backend's address, the TLS Secret
// of cert and an Ingress sending every host and path to the backend, with
// spec.tls giving benchTLSHost that Secret and the HTTP→HTTPS redirect off
// (the plain scenarios stay plain).
func startControlPlane(ctx context.Context, cert *benchCert) (*harness.ControlPlane, error) {
	cp, err := harness.StartControlPlane()
	if err != nil {
		return nil, err
	}
	pod := &harness.Pod{Service: benchService, Name: "backend-0", IP: backendIP, Port: backendPort}
	ing := harness.Ingress(benchNamespace, "bench", "kakehi",
		harness.Rule("", harness.Path(networkingv1.PathTypePrefix, "/", benchService)))
	ing.Annotations = map[string]string{"kakehi.dev/ssl-redirect": "false"}
	ing.Spec.TLS = []networkingv1.IngressTLS{{Hosts: []string{benchTLSHost}, SecretName: benchTLSSecret}}
	err = harness.CreateAll(ctx, cp.Client,
		harness.Namespace(benchNamespace),
		harness.IngressClass("kakehi", "kakehi.dev/ingress-controller", false),
		harness.Service(benchNamespace, benchService),
		harness.EndpointSlice(benchNamespace, benchService+"-1", benchService, pod),
		cert.secret(),
		ing,
	)
	if err != nil {
		_ = cp.Stop()
		return nil, err
	}
	return cp, nil
}

// kakehiProxy is the Kakehi controller binary, run through the wrapper
// that prepareKakehi wrote (GOMAXPROCS=1, taskset -c proxyCPU).
type kakehiProxy struct {
	c *harness.Controller
}

func (k *kakehiProxy) addr() string    { return k.c.HTTPAddr }
func (k *kakehiProxy) h2Addr() string  { return k.c.HTTPAddr }
func (k *kakehiProxy) tlsAddr() string { return k.c.HTTPSAddr }
func (k *kakehiProxy) pids() []int     { return []int{k.c.Cmd.Process.Pid} }
func (k *kakehiProxy) stop()           { k.c.Stop() }

// exited reports whether the controller has ended, with its log's tail.
func (k *kakehiProxy) exited() error {
	select {
	case <-k.c.Done():
		return fmt.Errorf("kakehi exited: %s", tailFile(k.c.LogPath, 1500))
	default:
		return nil
	}
}

// kakehiArgs are the controller flags of the run: the access log as asked
// (off by default, as for nginx and HAProxy), the same idle timeout and
// backend pool size as the others, the bench certificate as the default
// one too (wrk sends the IP it dials as server name; spec.tls covers
// benchTLSHost, which h2load sends), then the user's extra flags.
func kakehiArgs(s *settings, pool int) []string {
	args := []string{
		"--access-log=" + s.AccessLog,
		"--proxy-idle-timeout=300s",
		"--proxy-max-idle-backend-conns=" + strconv.Itoa(pool),
		"--default-tls-secret=" + benchNamespace + "/" + benchTLSSecret,
	}
	return append(args, s.KakehiArgs...)
}

// startKakehi starts the controller against cp and waits until it proxies
// to the backend.
func startKakehi(ctx context.Context, dir string, cp *harness.ControlPlane, s *settings, pool int) (proxy, proxySetup, error) {
	args := kakehiArgs(s, pool)
	setup := proxySetup{Command: fmt.Sprintf("GOMAXPROCS=1 taskset -c %d kakehi --kubeconfig <control plane> --http-addr 127.0.0.1:%d --health-addr 127.0.0.1:%d --metrics-addr 127.0.0.1:%d %s",
		proxyCPU, kakehiPort, kakehiPort+1, kakehiPort+2, strings.Join(args, " "))}
	readyCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	c, err := harness.StartController(readyCtx, harness.ControllerOptions{
		Kubeconfig: cp.Kubeconfig, IP: "127.0.0.1", PortBase: kakehiPort, Args: args, LogDir: dir,
	})
	if err != nil {
		return nil, setup, fmt.Errorf("kakehi: %w", err)
	}
	k := &kakehiProxy{c: c}
	// The command line as run (the harness adds flags of its own), and the
	// wrapper that pins it.
	setup.Command = strings.Join(c.Cmd.Args, " ")
	if wrapper, err := os.ReadFile(c.Cmd.Path); err == nil {
		setup.Config = string(wrapper)
	}
	if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", k.pids()[0])); strings.TrimSpace(string(comm)) != "kakehi" {
		k.stop()
		return nil, setup, fmt.Errorf("kakehi: process %d is %q, not the controller (is KAKEHI_BINARY the bench wrapper?)", k.pids()[0], strings.TrimSpace(string(comm)))
	}
	if err := checkServes(ctx, k.addr(), k.exited); err != nil {
		k.stop()
		return nil, setup, fmt.Errorf("kakehi: %w (log: %s)", err, tailFile(c.LogPath, 1500))
	}
	return k, setup, nil
}
