package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kakehi/kakehi/pkg/proxy"
	"github.com/kakehi/kakehi/pkg/reconcile"
)

// config is every command-line setting of the controller.
type config struct {
	kubeconfig     string
	ingressClass   string
	controllerName string
	httpAddr       string
	httpsAddr      string
	redirectPort   int
	metricsAddr    string
	healthAddr     string
	watchNamespace string
	leaderElect    bool
	leaderElectNS  string
	leaseDuration  time.Duration
	accessLog      string
	shutdownDelay  time.Duration
	shutdownGrace  time.Duration
	publishService string
	publishAddress string
	defaultTLS     string
	allowExtName   bool
	proxy          proxy.Options

	// derived by validate:
	publishSvc    types.NamespacedName
	defaultTLSRef types.NamespacedName
	publishAddrs  []networkingv1.IngressLoadBalancerIngress
}

// parseFlags parses args into a config; every flag is documented in --help.
func parseFlags(args []string) (*config, *flag.FlagSet, error) {
	c := &config{proxy: proxy.DefaultOptions()}
	fs := flag.NewFlagSet("kakehi", flag.ContinueOnError)
	fs.StringVar(&c.kubeconfig, "kubeconfig", "", "path to a kubeconfig file; else $KUBECONFIG, else the in-cluster config")
	fs.StringVar(&c.ingressClass, "ingress-class", "kakehi", "name of the IngressClass served; also the value of the legacy kubernetes.io/ingress.class annotation")
	fs.StringVar(&c.controllerName, "controller-name", "kakehi.dev/ingress-controller", "IngressClass spec.controller value owned by this controller")
	fs.StringVar(&c.httpAddr, "http-addr", ":8080", "address of the plain HTTP proxy listener (host:port, or fd:N for a socket passed by the parent process)")
	fs.StringVar(&c.httpsAddr, "https-addr", ":8443", "address of the TLS proxy listener (host:port, or fd:N; empty disables TLS)")
	fs.IntVar(&c.redirectPort, "https-redirect-port", 0, "port written in the Location of HTTP→HTTPS redirects (0: the --https-addr listener's port; 443 is left out)")
	fs.StringVar(&c.metricsAddr, "metrics-addr", ":9090", "address serving Prometheus metrics at /metrics (\"0\" disables)")
	fs.StringVar(&c.healthAddr, "health-addr", ":8081", "address serving /healthz and /readyz; ready once the first route table is published")
	fs.StringVar(&c.watchNamespace, "watch-namespace", "", "namespace to watch for Ingresses, Services and EndpointSlices (empty = all namespaces)")
	fs.BoolVar(&c.leaderElect, "leader-elect", false, "elect a leader among replicas; only the leader writes status (every replica serves traffic)")
	fs.StringVar(&c.leaderElectNS, "leader-election-namespace", "", "namespace of the leader-election Lease (default: the pod's namespace in a cluster, else kube-system)")
	fs.DurationVar(&c.leaseDuration, "leader-election-lease-duration", 15*time.Second, "how long a leader's lease lasts; a new leader takes over status writes within it after the old one dies")
	fs.StringVar(&c.accessLog, "access-log", "-", "where to write the JSON access log: - for stdout, a file path, or empty to disable")
	fs.StringVar(&c.publishService, "publish-service", "", "namespace/name of the Service whose load-balancer addresses (else cluster IPs) are written to status.loadBalancer of served Ingresses")
	fs.StringVar(&c.publishAddress, "publish-address", "", "comma-separated IPs or hostnames written to status.loadBalancer of served Ingresses (used when --publish-service is not set)")
	fs.DurationVar(&c.shutdownDelay, "shutdown-delay", 5*time.Second, "after SIGTERM, how long /readyz fails while the proxy still accepts connections, so that load balancers stop sending new ones")
	fs.DurationVar(&c.shutdownGrace, "shutdown-grace", 20*time.Second, "after --shutdown-delay, how long in-flight requests may drain before the remaining connections are closed")
	fs.StringVar(&c.defaultTLS, "default-tls-secret", "", "namespace/name of a kubernetes.io/tls Secret served to TLS clients whose server name no Ingress covers (default: a self-signed certificate made at start)")
	fs.BoolVar(&c.allowExtName, "allow-external-name-services", false, "allow Ingress backends that are ExternalName Services; off because they let an Ingress author send traffic to any host")
	c.proxy.RegisterFlags(fs)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: %s [flags]\n\nKakehi: a Kubernetes ingress controller with an in-process reverse proxy.\n\nFlags:\n", os.Args[0])
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, fs, err
	}
	if fs.NArg() > 0 {
		return nil, fs, fmt.Errorf("unexpected argument %q: kakehi takes flags only", fs.Arg(0))
	}
	return c, fs, c.validate()
}

// validate checks settings that flag parsing alone cannot.
func (c *config) validate() error {
	var errs []error
	if strings.TrimSpace(c.ingressClass) == "" {
		errs = append(errs, errors.New("--ingress-class must not be empty"))
	}
	if !strings.Contains(c.controllerName, "/") {
		errs = append(errs, fmt.Errorf("--controller-name %q must be a domain-prefixed path such as example.com/ingress", c.controllerName))
	}
	if c.shutdownDelay < 0 || c.shutdownGrace < 0 {
		errs = append(errs, errors.New("--shutdown-delay and --shutdown-grace must not be negative"))
	}
	if c.httpAddr == "" {
		errs = append(errs, errors.New("--http-addr must not be empty"))
	}
	if c.redirectPort < 0 || c.redirectPort > 65535 {
		errs = append(errs, errors.New("--https-redirect-port must be between 0 and 65535"))
	}
	var err error
	if c.publishSvc, err = namespacedName("--publish-service", c.publishService); err != nil {
		errs = append(errs, err)
	}
	if c.defaultTLSRef, err = namespacedName("--default-tls-secret", c.defaultTLS); err != nil {
		errs = append(errs, err)
	}
	if c.publishService != "" && c.publishAddress != "" {
		errs = append(errs, errors.New("--publish-service and --publish-address are exclusive: set one"))
	}
	addrs, err := reconcile.ParsePublishAddresses(c.publishAddress)
	if err != nil {
		errs = append(errs, fmt.Errorf("--publish-address: %w", err))
	}
	c.publishAddrs = addrs
	return errors.Join(errs...)
}

// namespacedName parses a "namespace/name" flag value; "" is allowed and
// gives the zero value.
func namespacedName(flagName, v string) (types.NamespacedName, error) {
	if v == "" {
		return types.NamespacedName{}, nil
	}
	ns, name, ok := strings.Cut(v, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return types.NamespacedName{}, fmt.Errorf("%s %q must be namespace/name", flagName, v)
	}
	return types.NamespacedName{Namespace: ns, Name: name}, nil
}

// restConfig loads the API server config from --kubeconfig, $KUBECONFIG or
// the in-cluster environment, in that order.
func (c *config) restConfig() (*rest.Config, error) {
	if c.kubeconfig != "" {
		return clientcmd.BuildConfigFromFlags("", c.kubeconfig)
	}
	if os.Getenv("KUBECONFIG") != "" {
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, nil).ClientConfig()
	}
	cfg, err := rest.InClusterConfig()
	if err != nil {
		return nil, fmt.Errorf("no --kubeconfig, no $KUBECONFIG and not in a cluster: %w", err)
	}
	return cfg, nil
}
