package route

import (
	"crypto/tls"
	"strings"
)

// Target is where a matched request goes: a cluster and the Kubernetes
// names that the access log and metrics report.
type Target struct {
	Namespace string
	Ingress   string
	Service   string
	Port      string // the Ingress's port: a number or a name
	Cluster   *Cluster
	Policy    *Policy // nil: the proxy's defaults
}

// PathKind says how a Path matches request paths.
type PathKind uint8

const (
	// PathExact matches the request path exactly, case-sensitively.
	PathExact PathKind = iota
	// PathPrefix matches element by element on '/' boundaries; a trailing
	// slash in the rule is ignored. ImplementationSpecific maps to it.
	PathPrefix
)

// String returns "Exact" or "Prefix".
func (k PathKind) String() string {
	if k == PathExact {
		return "Exact"
	}
	return "Prefix"
}

// Rule is one path of one host, as given to a Builder.
type Rule struct {
	Kind   PathKind
	Path   string // as written in the Ingress; must start with '/'
	Target *Target
}

// VirtualHost holds the routes of one host pattern. Lookup cost depends on
// the depth of the request path, never on the number of routes.
type VirtualHost struct {
	exact  map[string]*Target
	prefix map[string]*Target // key: the rule path without trailing '/'; "/" is ""
}

func newVirtualHost() *VirtualHost {
	return &VirtualHost{exact: make(map[string]*Target), prefix: make(map[string]*Target)}
}

// normalizePrefix turns a Prefix rule path into its match key: the path
// without trailing slashes, so "/" becomes "" and "/foo/" becomes "/foo".
func normalizePrefix(p string) string { return strings.TrimRight(p, "/") }

// add inserts a rule; the first rule for a key wins and add reports whether
// it was inserted.
func (v *VirtualHost) add(r Rule) bool {
	m, key := v.exact, r.Path
	if r.Kind == PathPrefix {
		m, key = v.prefix, normalizePrefix(r.Path)
	}
	if _, dup := m[key]; dup {
		return false
	}
	m[key] = r.Target
	return true
}

// Match returns the target for path: an Exact rule first, then the longest
// Prefix rule whose elements are a prefix of the path's elements.
func (v *VirtualHost) Match(path string) *Target {
	if t, ok := v.exact[path]; ok {
		return t
	}
	if len(v.prefix) == 0 {
		return nil
	}
	p := strings.TrimRight(path, "/")
	for {
		if t, ok := v.prefix[p]; ok {
			return t
		}
		if p == "" {
			return nil
		}
		i := strings.LastIndexByte(p, '/')
		if i < 0 {
			return nil
		}
		p = p[:i]
	}
}

// Table is an immutable route table. Build one with a Builder; publish it
// through a Store. Every method is safe for concurrent use.
type Table struct {
	exact          map[string]*VirtualHost // lower-case host
	wildcard       map[string]*VirtualHost // lower-case suffix after "*."
	anyHost        *VirtualHost            // rules with no host
	defaultBackend *Target
	tls            map[string]*TLSHost // lower-case exact host or "*.suffix"
	defaultCert    *tls.Certificate
	version        uint64
}

// Version returns the build number that the Builder stamped on the table.
func (t *Table) Version() uint64 { return t.version }

// Match returns the target for a request. host is the Host header or
// :authority (any case, with or without a port); path is the request path
// without the query. Rules are tried from the most specific host to the
// least: the exact host, then the one-label wildcard, then rules with no
// host; the first whose paths match wins. When none matches, the default
// backend is returned; nil means 404.
func (t *Table) Match(host, path string) *Target {
	h := normalizeHost(host)
	if v, ok := t.exact[h]; ok {
		if r := v.Match(path); r != nil {
			return r
		}
	}
	if len(t.wildcard) > 0 {
		if i := strings.IndexByte(h, '.'); i > 0 {
			if v, ok := t.wildcard[h[i+1:]]; ok {
				if r := v.Match(path); r != nil {
					return r
				}
			}
		}
	}
	if t.anyHost != nil {
		if r := t.anyHost.Match(path); r != nil {
			return r
		}
	}
	return t.defaultBackend
}

// normalizeHost strips a port and a trailing dot and lower-cases the host,
// allocating only when the host has upper-case letters.
func normalizeHost(h string) string {
	if len(h) > 0 && h[0] == '[' { // IPv6 literal
		if i := strings.IndexByte(h, ']'); i > 0 {
			h = h[:i+1]
		}
	} else if i := strings.LastIndexByte(h, ':'); i >= 0 {
		h = h[:i]
	}
	h = strings.TrimSuffix(h, ".")
	for i := 0; i < len(h); i++ {
		if c := h[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(h)
		}
	}
	return h
}
