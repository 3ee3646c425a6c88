package route

import (
	"fmt"
	"sort"
	"strings"
)

// Dump renders the table as deterministic text: hosts sorted, exact paths
// before prefixes, each target with its cluster's endpoint addresses. Tokens
// are left out, since they depend on registry history. Golden tests compare
// Dump output.
func (t *Table) Dump() string {
	var sb strings.Builder
	if t.defaultBackend != nil {
		fmt.Fprintf(&sb, "default -> %s\n", t.defaultBackend.describe())
	}
	dumpHosts(&sb, "", t.exact)
	dumpHosts(&sb, "*.", t.wildcard)
	if t.anyHost != nil {
		sb.WriteString("host *\n")
		t.anyHost.dump(&sb)
	}
	t.dumpTLS(&sb)
	return sb.String()
}

func dumpHosts(sb *strings.Builder, prefix string, m map[string]*VirtualHost) {
	hosts := make([]string, 0, len(m))
	for h := range m {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	for _, h := range hosts {
		fmt.Fprintf(sb, "host %s%s\n", prefix, h)
		m[h].dump(sb)
	}
}

func (v *VirtualHost) dump(sb *strings.Builder) {
	for _, kind := range []PathKind{PathExact, PathPrefix} {
		m := v.exact
		if kind == PathPrefix {
			m = v.prefix
		}
		paths := make([]string, 0, len(m))
		for p := range m {
			paths = append(paths, p)
		}
		sort.Strings(paths)
		for _, p := range paths {
			shown := p
			if kind == PathPrefix && p == "" {
				shown = "/"
			}
			fmt.Fprintf(sb, "  %s %s -> %s\n", kind, shown, m[p].describe())
		}
	}
}

func (t *Target) describe() string {
	c := t.Cluster
	if c == nil {
		return fmt.Sprintf("%s/%s service=%s port=%s (no cluster)", t.Namespace, t.Ingress, t.Service, t.Port)
	}
	addrs := make([]string, len(c.backends))
	for i, b := range c.backends {
		addrs[i] = b.addr
	}
	s := fmt.Sprintf("%s/%s cluster=%s [%s]", t.Namespace, t.Ingress, c.name, strings.Join(addrs, " "))
	if len(addrs) == 0 && c.reason != "" {
		s += " (" + c.reason + ")"
	}
	if c.protocol == ProtocolH2C {
		s += " protocol=h2c"
	}
	if t.Policy != nil {
		s += " policy=" + t.Policy.Source
	}
	return s
}

func (t *Table) dumpTLS(sb *strings.Builder) {
	hosts := make([]string, 0, len(t.tls))
	for h := range t.tls {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	for _, h := range hosts {
		e := t.tls[h]
		cert := "default-certificate"
		if e.Cert != nil {
			cert = "secret=" + e.Source
		}
		fmt.Fprintf(sb, "tls %s %s redirect=%v\n", h, cert, e.RedirectHTTP)
	}
}
