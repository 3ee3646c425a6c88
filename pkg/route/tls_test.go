package route

import (
	"crypto/tls"
	"testing"
)

func TestTLSLookupPrefersExactThenOneLabelWildcard(t *testing.T) {
	exactCert, wildCert, defCert := &tls.Certificate{}, &tls.Certificate{}, &tls.Certificate{}
	b := NewBuilder(1)
	b.AddTLS("www.example.com", TLSHost{Cert: exactCert, Source: "ns/exact", RedirectHTTP: true})
	b.AddTLS("*.example.com", TLSHost{Cert: wildCert, Source: "ns/wild"})
	b.AddTLS("broken.example.org", TLSHost{RedirectHTTP: true}) // secret missing: default cert
	if b.AddTLS("WWW.example.com", TLSHost{}) {
		t.Error("second entry for the same host was recorded")
	}
	b.SetDefaultCertificate(defCert)
	tab := b.Build()
	for _, tc := range []struct {
		name     string
		want     *tls.Certificate
		redirect bool
	}{
		{"www.example.com", exactCert, true},
		{"WWW.Example.COM:443", exactCert, true},
		{"api.example.com", wildCert, false},
		{"a.b.example.com", defCert, false}, // wildcard covers one label only
		{"example.com", defCert, false},
		{"broken.example.org", defCert, true},
		{"", defCert, false},
	} {
		if got := tab.Certificate(tc.name); got != tc.want {
			t.Errorf("Certificate(%q) = %p, want %p", tc.name, got, tc.want)
		}
		if got := tab.RedirectHTTP(tc.name); got != tc.redirect {
			t.Errorf("RedirectHTTP(%q) = %v, want %v", tc.name, got, tc.redirect)
		}
	}
}

func TestTableWithoutTLSHasNoCertificates(t *testing.T) {
	tab := NewBuilder(1).Build()
	if tab.Certificate("x.example") != nil || tab.TLS("x.example") != nil || tab.RedirectHTTP("x.example") {
		t.Error("empty table reports TLS settings")
	}
}
