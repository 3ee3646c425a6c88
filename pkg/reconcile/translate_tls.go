package reconcile

import (
	"crypto/tls"
	"fmt"
	"strconv"
	"sync"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kakehi/kakehi/pkg/route"
)

// AnnotationSSLRedirect turns the HTTP→HTTPS redirect of an Ingress's TLS
// hosts off ("false") or on ("true", the default).
const AnnotationSSLRedirect = "kakehi.dev/ssl-redirect"

// TLS problem reasons.
const (
	ReasonTLSSecretNotFound = "TLSSecretNotFound"
	ReasonInvalidTLSSecret  = "InvalidTLSSecret"
	ReasonInvalidAnnotation = "InvalidAnnotation"
	ReasonTLSConflict       = "TLSConflict"
)

// TLSSecretRefs returns the Secrets that the table built from snap needs:
// spec.tls[].secretName of our Ingresses (always in the Ingress's own
// namespace) and opts.DefaultTLSSecret. The controller watches exactly
// these and no other Secret.
func TLSSecretRefs(snap *Snapshot, opts Options) map[types.NamespacedName]struct{} {
	refs := make(map[types.NamespacedName]struct{})
	if opts.DefaultTLSSecret.Name != "" {
		refs[opts.DefaultTLSSecret] = struct{}{}
	}
	for _, ing := range Ours(snap, opts) {
		for _, t := range ing.Spec.TLS {
			if t.SecretName != "" {
				refs[types.NamespacedName{Namespace: ing.Namespace, Name: t.SecretName}] = struct{}{}
			}
		}
	}
	return refs
}

// tls adds the TLS hosts of one of our Ingresses. A missing or invalid
// Secret is reported and its hosts are served with the default certificate;
// hosts already claimed by an earlier Ingress keep their first entry.
func (t *translator) tls(ing *networkingv1.Ingress) {
	redirect := t.sslRedirect(ing)
	for i, entry := range ing.Spec.TLS {
		field := fmt.Sprintf("spec.tls[%d]", i)
		cert, source := t.certificate(ing, entry.SecretName, field+".secretName")
		for j, raw := range entry.Hosts {
			host, err := validateHost(raw)
			if err != nil {
				t.warn(ing, ReasonInvalidHost, fmt.Sprintf("%s.hosts[%d]", field, j), "%v; host skipped", err)
				continue
			}
			if !t.b.AddTLS(host, route.TLSHost{Cert: cert, Source: source, RedirectHTTP: redirect}) {
				t.warn(ing, ReasonTLSConflict, fmt.Sprintf("%s.hosts[%d]", field, j),
					"host %q already has TLS settings from an older Ingress; this entry is ignored", host)
			}
		}
	}
}

// sslRedirect reads AnnotationSSLRedirect; an unparsable value is reported
// and the default (true) kept.
func (t *translator) sslRedirect(ing *networkingv1.Ingress) bool {
	v, ok := ing.Annotations[AnnotationSSLRedirect]
	if !ok {
		return true
	}
	on, err := strconv.ParseBool(v)
	if err != nil {
		t.warn(ing, ReasonInvalidAnnotation, "metadata.annotations["+AnnotationSSLRedirect+"]",
			"%q is not a boolean; the redirect stays on", v)
		return true
	}
	return on
}

// certificate returns the parsed certificate of Secret name in the
// Ingress's namespace, or nil after reporting why it cannot be used.
func (t *translator) certificate(ing *networkingv1.Ingress, name, field string) (*tls.Certificate, string) {
	if name == "" {
		return nil, ""
	}
	key := objKey{namespace: ing.Namespace, name: name}
	s, ok := t.idx.secrets[key]
	if !ok {
		t.warn(ing, ReasonTLSSecretNotFound, field, "secret %q not found; its hosts get the default certificate", key)
		return nil, ""
	}
	cert, err := t.certs.parse(s)
	if err != nil {
		t.warn(ing, ReasonInvalidTLSSecret, field, "secret %q: %v; its hosts get the default certificate", key, err)
		return nil, ""
	}
	return cert, key.String()
}

// defaultCertificate sets the table's default certificate from
// opts.DefaultTLSSecret. A problem with it is returned for the controller
// to log; it has no Ingress to attach an Event to.
func (t *translator) defaultCertificate(opts Options) error {
	ref := opts.DefaultTLSSecret
	if ref.Name == "" {
		return nil
	}
	s, ok := t.idx.secrets[objKey{namespace: ref.Namespace, name: ref.Name}]
	if !ok {
		return fmt.Errorf("--default-tls-secret %s: not found", ref)
	}
	cert, err := t.certs.parse(s)
	if err != nil {
		return fmt.Errorf("--default-tls-secret %s: %w", ref, err)
	}
	t.b.SetDefaultCertificate(cert)
	return nil
}

// CertCache keeps parsed certificates by Secret UID and resourceVersion, so
// that a rebuild parses only Secrets that changed. Entries not used by the
// last Build are dropped. The zero value is ready; a nil *CertCache parses
// every time.
type CertCache struct {
	mu   sync.Mutex
	used map[string]*tls.Certificate
	prev map[string]*tls.Certificate
}

// begin starts a Build: entries not used since the previous begin go.
func (c *CertCache) begin() {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.prev, c.used = c.used, make(map[string]*tls.Certificate)
	c.mu.Unlock()
}

// parse returns the certificate of a kubernetes.io/tls (or Opaque) Secret
// holding tls.crt and tls.key.
func (c *CertCache) parse(s *corev1.Secret) (*tls.Certificate, error) {
	id := string(s.UID) + "/" + s.ResourceVersion
	if c != nil {
		c.mu.Lock()
		defer c.mu.Unlock()
		if cert, ok := c.used[id]; ok {
			return cert, nil
		}
		if cert, ok := c.prev[id]; ok {
			c.used[id] = cert
			return cert, nil
		}
	}
	cert, err := parseTLSSecret(s)
	if err != nil {
		return nil, err
	}
	if c != nil {
		c.used[id] = cert
	}
	return cert, nil
}

func parseTLSSecret(s *corev1.Secret) (*tls.Certificate, error) {
	if s.Type != corev1.SecretTypeTLS && s.Type != corev1.SecretTypeOpaque && s.Type != "" {
		return nil, fmt.Errorf("type %q is not %s", s.Type, corev1.SecretTypeTLS)
	}
	crt, key := s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey]
	if len(crt) == 0 || len(key) == 0 {
		return nil, fmt.Errorf("needs both %s and %s", corev1.TLSCertKey, corev1.TLSPrivateKeyKey)
	}
	cert, err := tls.X509KeyPair(crt, key)
	if err != nil {
		return nil, fmt.Errorf("invalid certificate or key: %w", err)
	}
	return &cert, nil
}
