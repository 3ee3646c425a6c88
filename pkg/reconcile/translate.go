package reconcile

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/kakehi/kakehi/pkg/route"
)

// Build translates snap into a route table stamped with version, taking
// backends from gen (route.Registry.Begin()). gen must not be nil; Build
// asks it only for backends that the returned table uses, so committing gen
// after publishing the table retires exactly the backends no route needs.
//
// Build is pure and deterministic: the same snapshot, with its slices in
// any order, gives the same Table.Dump() and the same Problems in the same
// order. Our Ingresses (see Ours) are translated in precedence order; for
// each, spec.defaultBackend first, then spec.rules in order. A rejected
// field skips only the rule or path it belongs to.
//
// Translation rules, in short:
//   - Hosts are lower-cased and must be a DNS-1123 subdomain or "*." and
//     one; an invalid host skips its whole rule (InvalidHost).
//   - Paths: see validatePath and pathKind; an invalid path is skipped
//     (InvalidPath). ImplementationSpecific is treated as Prefix.
//   - The first Ingress to claim a host, path kind and path (or the default
//     backend) keeps it; later claims are reported (RuleConflict,
//     DefaultBackendConflict).
//   - A service backend becomes a route.Cluster named
//     "namespace/service:port", shared by every route that uses it. A
//     missing Service or port, or an ExternalName Service, still yields a
//     route, to a cluster with no backends and a reason, so that it answers
//     503 rather than falling through to another rule.
func Build(snap *Snapshot, opts Options, gen *route.Generation, version uint64) (*route.Table, []Problem) {
	b := route.NewBuilder(version)
	if snap == nil {
		return b.Build(), nil
	}
	t := &translator{
		idx:      indexSnapshot(snap),
		gen:      gen,
		b:        b,
		clusters: make(map[clusterKey]*clusterResult),
		owners:   make(map[ruleKey]ruleOwner),
		certs:    opts.Certs,

		allowExternalName: opts.AllowExternalName,
	}
	t.policies, _ = ResolvePolicies(snap, opts)
	t.certs.begin()
	if err := t.defaultCertificate(opts); err != nil {
		t.problems = append(t.problems, Problem{Kind: "Secret", Namespace: opts.DefaultTLSSecret.Namespace,
			Name: opts.DefaultTLSSecret.Name, Type: corev1.EventTypeWarning, Reason: ReasonInvalidTLSSecret, Message: err.Error()})
	}
	for _, ing := range Ours(snap, opts) {
		t.ingress(ing)
	}
	return b.Build(), t.problems
}

// translator holds the state of one Build.
type translator struct {
	idx      *snapshotIndex
	gen      *route.Generation
	b        *route.Builder
	clusters map[clusterKey]*clusterResult
	owners   map[ruleKey]ruleOwner // who holds each route
	defOwner *ruleOwner            // who holds the default backend
	certs    *CertCache
	policies map[objKey]*route.Policy // by Ingress
	problems []Problem

	allowExternalName bool
}

// ruleKey identifies a route in the table: the same key is the same route.
type ruleKey struct {
	host string // "" for every host
	kind route.PathKind
	key  string // see routeKey
}

// ruleOwner names the Ingress field that holds a route.
type ruleOwner struct {
	ingress objKey
	at      fieldRef
}

// fieldRef locates a backend within an Ingress: spec.defaultBackend when
// rule < 0, else spec.rules[rule].http.paths[path]. Field paths are
// formatted only when a Problem needs them, which keeps Build cheap.
type fieldRef struct{ rule, path int }

var defaultBackendRef = fieldRef{rule: -1}

// String returns the field path of the path entry, or of the default
// backend.
func (f fieldRef) String() string {
	if f.rule < 0 {
		return "spec.defaultBackend"
	}
	return fmt.Sprintf("spec.rules[%d].http.paths[%d]", f.rule, f.path)
}

// backend returns the field path of the backend.
func (f fieldRef) backend() string {
	if f.rule < 0 {
		return "spec.defaultBackend"
	}
	return f.String() + ".backend"
}

// skipped names what a rejected backend at f takes out of the table.
func (f fieldRef) skipped() string {
	if f.rule < 0 {
		return "default backend skipped"
	}
	return "path skipped"
}

func (t *translator) warn(ing *networkingv1.Ingress, reason, field, format string, args ...any) {
	t.problems = append(t.problems, ingressWarning(ing, reason, field, format, args...))
}

// ingress adds the default backend and the rules of one of our Ingresses.
func (t *translator) ingress(ing *networkingv1.Ingress) {
	if ing.Spec.DefaultBackend != nil {
		t.defaultBackend(ing)
	}
	for i := range ing.Spec.Rules {
		t.rule(ing, i)
	}
	t.tls(ing)
}

// defaultBackend sets the table's default target from ing's
// spec.defaultBackend unless an earlier Ingress holds it.
func (t *translator) defaultBackend(ing *networkingv1.Ingress) {
	svc, ok := t.checkBackend(ing, ing.Spec.DefaultBackend, defaultBackendRef)
	if !ok {
		return
	}
	if w := t.defOwner; w != nil {
		t.warn(ing, ReasonDefaultBackendConflict, defaultBackendRef.String(),
			"ignored: the default backend of Ingress %q takes precedence (created earlier, or same time and name sorts first)", w.ingress.String())
		return
	}
	t.defOwner = &ruleOwner{ingress: objKey{ing.Namespace, ing.Name}, at: defaultBackendRef}
	t.b.SetDefault(t.target(ing, svc, defaultBackendRef))
}

// rule adds the paths of spec.rules[i] of ing.
func (t *translator) rule(ing *networkingv1.Ingress, i int) {
	r := &ing.Spec.Rules[i]
	if r.HTTP == nil {
		return
	}
	host, err := validateHost(r.Host)
	if err != nil {
		t.warn(ing, ReasonInvalidHost, fmt.Sprintf("spec.rules[%d].host", i), "invalid host %q, rule skipped: %v", r.Host, err)
		return
	}
	for j := range r.HTTP.Paths {
		t.path(ing, host, &r.HTTP.Paths[j], fieldRef{rule: i, path: j})
	}
}

// path adds one HTTPIngressPath under host, unless it is invalid or an
// earlier rule holds the same route.
func (t *translator) path(ing *networkingv1.Ingress, host string, p *networkingv1.HTTPIngressPath, at fieldRef) {
	kind, err := pathKind(p.PathType)
	if err != nil {
		t.warn(ing, ReasonInvalidPath, at.String()+".pathType", "%v; path skipped", err)
		return
	}
	path, err := validatePath(p.Path)
	if err != nil {
		t.warn(ing, ReasonInvalidPath, at.String()+".path", "%v; path skipped", err)
		return
	}
	svc, ok := t.checkBackend(ing, &p.Backend, at)
	if !ok {
		return
	}
	key := ruleKey{host: host, kind: kind, key: routeKey(kind, path)}
	if w, held := t.owners[key]; held {
		t.warn(ing, ReasonRuleConflict, at.String()+".path",
			"%s %q on %s is already routed by Ingress %q (%s), which takes precedence; path skipped",
			kind, path, hostLabel(host), w.ingress.String(), w.at)
		return
	}
	t.owners[key] = ruleOwner{ingress: objKey{ing.Namespace, ing.Name}, at: at}
	t.b.Add(host, route.Rule{Kind: kind, Path: path, Target: t.target(ing, svc, at)})
}

func hostLabel(host string) string {
	if host == "" {
		return "every host"
	}
	return fmt.Sprintf("host %q", host)
}

// checkBackend returns the service backend of b, found at at, reporting a
// Problem and false when b has none or is malformed.
func (t *translator) checkBackend(ing *networkingv1.Ingress, b *networkingv1.IngressBackend, at fieldRef) (*networkingv1.IngressServiceBackend, bool) {
	switch {
	case b.Service != nil && b.Resource != nil:
		t.warn(ing, ReasonInvalidBackend, at.backend(), "service and resource are both set; %s", at.skipped())
	case b.Resource != nil:
		t.warn(ing, ReasonUnsupportedBackend, at.backend()+".resource",
			"resource backends (%s %q) are not supported, only service backends; %s", b.Resource.Kind, b.Resource.Name, at.skipped())
	case b.Service == nil:
		t.warn(ing, ReasonInvalidBackend, at.backend(), "no service backend; %s", at.skipped())
	case b.Service.Name == "":
		t.warn(ing, ReasonInvalidBackend, at.backend()+".service.name", "service name is empty; %s", at.skipped())
	default:
		return b.Service, t.checkPort(ing, b.Service.Port, at)
	}
	return nil, false
}

// checkPort reports whether p, the port of the backend at at, names exactly
// one valid port.
func (t *translator) checkPort(ing *networkingv1.Ingress, p networkingv1.ServiceBackendPort, at fieldRef) bool {
	switch {
	case p.Name != "" && p.Number != 0:
		t.warn(ing, ReasonInvalidBackend, at.backend()+".service.port", "both number and name are set; %s", at.skipped())
	case p.Name == "" && p.Number == 0:
		t.warn(ing, ReasonInvalidBackend, at.backend()+".service.port", "neither number nor name is set; %s", at.skipped())
	case p.Name == "" && (p.Number < 1 || p.Number > 65535):
		t.warn(ing, ReasonInvalidBackend, at.backend()+".service.port.number", "port %d is not in 1-65535; %s", p.Number, at.skipped())
	default:
		return true
	}
	return false
}

// target returns the route target for the checked service backend of ing
// found at at, reporting a Problem when its cluster cannot have backends.
func (t *translator) target(ing *networkingv1.Ingress, svc *networkingv1.IngressServiceBackend, at fieldRef) *route.Target {
	cr := t.cluster(ing.Namespace, svc)
	if cr.reason != "" {
		t.warn(ing, cr.reason, at.backend()+cr.field, "%s", cr.detail)
	}
	return &route.Target{
		Namespace: ing.Namespace,
		Ingress:   ing.Name,
		Service:   svc.Name,
		Port:      portAsWritten(svc.Port),
		Cluster:   cr.cluster,
		Policy:    t.policies[objKey{ing.Namespace, ing.Name}],
	}
}
