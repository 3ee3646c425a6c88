package route

import (
	"crypto/tls"
	"strings"
)

// TLSHost is how one host (exact or "*.suffix") is served over TLS.
type TLSHost struct {
	// Cert is the host's certificate; nil means the proxy's default
	// certificate (the Ingress named a Secret that is missing or invalid).
	Cert *tls.Certificate
	// Source names where Cert came from ("namespace/secret"), for logs.
	Source string
	// RedirectHTTP sends plain-HTTP requests for the host to HTTPS with 308.
	RedirectHTTP bool
}

// AddTLS records how host is served over TLS. host is exact or
// "*.suffix", already validated. The first entry for a host wins; AddTLS
// reports whether this one was recorded.
func (b *Builder) AddTLS(host string, h TLSHost) bool {
	host = strings.ToLower(host)
	if b.t.tls == nil {
		b.t.tls = make(map[string]*TLSHost)
	}
	if _, dup := b.t.tls[host]; dup {
		return false
	}
	b.t.tls[host] = &h
	return true
}

// SetDefaultCertificate sets the certificate for server names that no
// TLSHost covers (--default-tls-secret); nil leaves the proxy's own default.
func (b *Builder) SetDefaultCertificate(c *tls.Certificate) { b.t.defaultCert = c }

// DefaultCertificate returns the certificate set by SetDefaultCertificate,
// or nil.
func (t *Table) DefaultCertificate() *tls.Certificate { return t.defaultCert }

// TLS returns the TLS entry for host (any case, a port ignored): the exact
// host first, then its one-label wildcard; nil when none covers it.
func (t *Table) TLS(host string) *TLSHost {
	if len(t.tls) == 0 {
		return nil
	}
	h := normalizeHost(host)
	if e, ok := t.tls[h]; ok {
		return e
	}
	if i := strings.IndexByte(h, '.'); i > 0 {
		if e, ok := t.tls["*"+h[i:]]; ok {
			return e
		}
	}
	return nil
}

// Certificate returns the certificate to present for an SNI server name:
// the covering TLSHost's certificate, else the table's default, else nil
// (the proxy then uses its own self-signed default).
func (t *Table) Certificate(serverName string) *tls.Certificate {
	if e := t.TLS(serverName); e != nil && e.Cert != nil {
		return e.Cert
	}
	return t.defaultCert
}

// RedirectHTTP reports whether a plain-HTTP request for host must be
// redirected to HTTPS.
func (t *Table) RedirectHTTP(host string) bool {
	e := t.TLS(host)
	return e != nil && e.RedirectHTTP
}
