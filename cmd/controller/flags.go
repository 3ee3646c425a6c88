package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kakehi/kakehi/pkg/proxy"
)

// config is every command-line setting of the controller.
type config struct {
	kubeconfig     string
	ingressClass   string
	controllerName string
	httpAddr       string
	httpsAddr      string
	metricsAddr    string
	healthAddr     string
	watchNamespace string
	leaderElect    bool
	leaderElectNS  string
	accessLog      string
	proxy          proxy.Options
}

// parseFlags parses args into a config; every flag is documented in --help.
func parseFlags(args []string) (*config, *flag.FlagSet, error) {
	c := &config{proxy: proxy.DefaultOptions()}
	fs := flag.NewFlagSet("kakehi", flag.ContinueOnError)
	fs.StringVar(&c.kubeconfig, "kubeconfig", "", "path to a kubeconfig file; else $KUBECONFIG, else the in-cluster config")
	fs.StringVar(&c.ingressClass, "ingress-class", "kakehi", "name of the IngressClass served; also the value of the legacy kubernetes.io/ingress.class annotation")
	fs.StringVar(&c.controllerName, "controller-name", "kakehi.dev/ingress-controller", "IngressClass spec.controller value owned by this controller")
	fs.StringVar(&c.httpAddr, "http-addr", ":8080", "address of the plain HTTP proxy listener (host:port, or fd:N for a socket passed by the parent process)")
	fs.StringVar(&c.httpsAddr, "https-addr", ":8443", "address of the TLS proxy listener (not used until TLS termination lands)")
	fs.StringVar(&c.metricsAddr, "metrics-addr", ":9090", "address serving Prometheus metrics at /metrics (\"0\" disables)")
	fs.StringVar(&c.healthAddr, "health-addr", ":8081", "address serving /healthz and /readyz; ready once the first route table is published")
	fs.StringVar(&c.watchNamespace, "watch-namespace", "", "namespace to watch for Ingresses, Services and EndpointSlices (empty = all namespaces)")
	fs.BoolVar(&c.leaderElect, "leader-elect", false, "elect a leader among replicas; only the leader writes status (every replica serves traffic)")
	fs.StringVar(&c.leaderElectNS, "leader-election-namespace", "", "namespace of the leader-election Lease (default: the pod's namespace in a cluster, else kube-system)")
	fs.StringVar(&c.accessLog, "access-log", "-", "where to write the JSON access log: - for stdout, a file path, or empty to disable")
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
	if c.httpAddr == "" {
		errs = append(errs, errors.New("--http-addr must not be empty"))
	}
	return errors.Join(errs...)
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
