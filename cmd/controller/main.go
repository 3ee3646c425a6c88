// Command controller is Kakehi: a Kubernetes ingress controller whose
// reverse proxy runs in the same process. It watches Ingresses and what they
// point at, builds an immutable route table and swaps it into the proxy
// atomically. Run it with --help for its flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/kakehi/kakehi/pkg/apis/v1alpha1"
	"github.com/kakehi/kakehi/pkg/metrics"
	"github.com/kakehi/kakehi/pkg/proxy"
	"github.com/kakehi/kakehi/pkg/reconcile"
	"github.com/kakehi/kakehi/pkg/route"
)

// version is stamped at build time (-ldflags "-X main.version=...").
var version = "dev"

func main() {
	cfg, _, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "kakehi:", err)
		os.Exit(2)
	}
	ctrl.SetLogger(zap.New())
	ctrl.Log.Info("starting kakehi", "version", version, "ingressClass", cfg.ingressClass)
	if err := run(ctrl.SetupSignalHandler(), cfg); err != nil {
		fmt.Fprintln(os.Stderr, "kakehi:", err)
		os.Exit(1)
	}
}

// run wires the manager, the route store, the proxy and the reconciler, and
// blocks until ctx is done.
func run(ctx context.Context, cfg *config) error {
	rest, err := cfg.restConfig()
	if err != nil {
		return err
	}
	mgr, err := ctrl.NewManager(rest, managerOptions(cfg))
	if err != nil {
		return fmt.Errorf("creating manager: %w", err)
	}
	clientset, err := kubernetes.NewForConfig(rest)
	if err != nil {
		return err
	}
	store := route.NewStore()
	proxyMetrics, reconcileMetrics := metrics.NewProxy(), metrics.NewReconcile()
	if err := errors.Join(proxyMetrics.Register(ctrlmetrics.Registry), reconcileMetrics.Register(ctrlmetrics.Registry)); err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}
	accessLog, closeLog, err := openAccessLog(cfg.accessLog)
	if err != nil {
		return err
	}
	defer closeLog()
	tlsListener, redirectPort, err := listenTLS(cfg.httpsAddr, cfg.redirectPort)
	if err != nil {
		return err
	}
	srv, err := proxy.New(proxy.Config{Store: store, Metrics: proxyMetrics, AccessLog: accessLog, Options: cfg.proxy,
		TLS: proxy.TLSOptions{RedirectPort: redirectPort}}) // self-signed fallback made here
	if err != nil {
		return err
	}
	httpListener, err := proxy.Listen(cfg.httpAddr)
	if err != nil {
		return err
	}
	rec := &reconcile.Controller{
		Reader:   mgr.GetCache(),
		Store:    store,
		Registry: route.NewRegistry(srv.BackendGone),
		Options: reconcile.Options{IngressClass: cfg.ingressClass, ControllerName: cfg.controllerName,
			DefaultTLSSecret: cfg.defaultTLSRef, Certs: &reconcile.CertCache{}, AllowExternalName: cfg.allowExtName},
		Secrets:  &reconcile.SecretWatcher{Client: clientset},
		Recorder: mgr.GetEventRecorder("kakehi"),
		Metrics:  reconcileMetrics,
	}
	rec.Policies = policiesServed(mgr)
	if err := rec.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up reconciler: %w", err)
	}
	if err := setupStatus(mgr, cfg, clientset, rec); err != nil {
		return fmt.Errorf("setting up status writers: %w", err)
	}
	lc := &proxy.Lifecycle{Server: srv, Plain: httpListener, TLS: tlsListener, Delay: cfg.shutdownDelay,
		Grace: cfg.shutdownGrace, Companion: mgr.Start, Log: ctrl.Log.WithName("shutdown").Info}
	if err := errors.Join(
		mgr.AddHealthzCheck("ping", healthz.Ping),
		mgr.AddReadyzCheck("routes", publishedCheck(store)),
		mgr.AddReadyzCheck("draining", func(*http.Request) error {
			if lc.Draining() {
				return errors.New("shutting down")
			}
			return nil
		}),
	); err != nil {
		return err
	}
	return lc.Run(ctx)
}

// setupStatus adds the leader elector and the status writers: Ingress
// load-balancer status (when there is an address to publish) and
// RoutePolicy conditions (when the CRD is installed).
func setupStatus(mgr ctrl.Manager, cfg *config, clientset kubernetes.Interface, rec *reconcile.Controller) error {
	leader := &reconcile.Leader{Namespace: leaderElectionNamespace(cfg.leaderElectNS),
		Name: "kakehi-" + cfg.ingressClass, LeaseDuration: cfg.leaseDuration}
	if cfg.leaderElect {
		leader.Client = clientset
	}
	errs := []error{mgr.Add(leader)}
	status := &reconcile.StatusWriter{Client: mgr.GetClient(), Options: rec.Options,
		PublishService: cfg.publishSvc, PublishAddresses: cfg.publishAddrs, Leader: leader}
	if status.Enabled() {
		errs = append(errs, status.SetupWithManager(mgr))
	}
	if rec.Policies {
		policies := &reconcile.PolicyStatusWriter{Client: mgr.GetClient(), Options: rec.Options, Leader: leader}
		errs = append(errs, policies.SetupWithManager(mgr))
	}
	return errors.Join(errs...)
}

// policiesServed reports whether the API server serves the RoutePolicy
// CRD; without it Kakehi runs with Ingress semantics alone.
func policiesServed(mgr ctrl.Manager) bool {
	_, err := mgr.GetRESTMapper().RESTMapping(schema.GroupKind{Group: v1alpha1.GroupVersion.Group, Kind: "RoutePolicy"}, v1alpha1.GroupVersion.Version)
	if err != nil {
		ctrl.Log.Info("RoutePolicy CRD not served: policies are off (install config/crd to use them)", "error", err.Error())
		return false
	}
	return true
}

// managerOptions maps flags onto controller-runtime's manager options.
func managerOptions(cfg *config) ctrl.Options {
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = v1alpha1.AddToScheme(scheme)
	opts := ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: cfg.metricsAddr},
		HealthProbeBindAddress: cfg.healthAddr,
		// Leader election is ours (reconcile.Leader): it gates status writes
		// only, and losing the lease must not stop the process.
	}
	if cfg.watchNamespace != "" {
		opts.Cache = cache.Options{DefaultNamespaces: map[string]cache.Config{cfg.watchNamespace: {}}}
		if ns := cfg.publishSvc.Namespace; ns != "" && ns != cfg.watchNamespace {
			// The published Service may live outside the watched namespace.
			opts.Cache.ByObject = map[client.Object]cache.ByObject{&corev1.Service{}: {
				Namespaces: map[string]cache.Config{cfg.watchNamespace: {}, ns: {}},
			}}
		}
	}
	return opts
}

// leaderElectionNamespace returns ns, else the pod's own namespace inside a
// cluster, else kube-system.
func leaderElectionNamespace(ns string) string {
	if ns != "" {
		return ns
	}
	if b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace"); err == nil && len(b) > 0 {
		return string(b)
	}
	return "kube-system"
}

// publishedCheck fails until the first route table is published.
func publishedCheck(store *route.Store) healthz.Checker {
	return func(_ *http.Request) error {
		select {
		case <-store.Published():
			return nil
		default:
			return errors.New("no route table published yet")
		}
	}
}

// openAccessLog opens the access-log destination: "-" for stdout, "" for
// none, else a file opened for appending.
func openAccessLog(dest string) (io.Writer, func(), error) {
	switch dest {
	case "":
		return nil, func() {}, nil
	case "-":
		return os.Stdout, func() {}, nil
	}
	f, err := os.OpenFile(dest, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("--access-log: %w", err)
	}
	return f, func() { _ = f.Close() }, nil
}
