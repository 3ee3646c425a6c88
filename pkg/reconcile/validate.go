package reconcile

import (
	"errors"
	"fmt"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/kakehi/kakehi/pkg/route"
)

const (
	maxSubdomainLen = 253 // RFC 1123 subdomain, as Kubernetes checks it
	maxLabelLen     = 63  // RFC 1035 label
)

// validateHost lower-cases an Ingress rule host and checks it. It returns
// the host to give to route.Builder.Add: "" (every host) for an empty host,
// else an exact DNS-1123 subdomain or "*." followed by one. A '*' is allowed
// only as the whole first label. An IP address is rejected, as the
// Kubernetes API does ("must be a DNS name, not an IP address"). The error
// says why the host is invalid.
func validateHost(raw string) (string, error) {
	if raw == "" {
		return "", nil
	}
	host := strings.ToLower(raw)
	name := host
	if strings.HasPrefix(host, "*.") {
		name = host[2:]
	}
	if strings.Contains(name, "*") {
		return "", errors.New("a wildcard '*' is allowed only as the whole first label, as in \"*.example.com\"")
	}
	if err := checkSubdomain(name); err != nil {
		return "", err
	}
	if looksLikeIPv4(name) {
		return "", errors.New("must be a DNS name, not an IP address")
	}
	return host, nil
}

// checkSubdomain reports whether s is a lower-case DNS-1123 subdomain: at
// most 253 bytes of dot-separated labels, each 1 to 63 bytes of [a-z0-9-]
// that begin and end with a letter or digit.
func checkSubdomain(s string) error {
	if len(s) > maxSubdomainLen {
		return fmt.Errorf("must be no more than %d characters", maxSubdomainLen)
	}
	for label := range strings.SplitSeq(s, ".") {
		if err := checkLabel(label); err != nil {
			return err
		}
	}
	return nil
}

func checkLabel(l string) error {
	const want = "must be a DNS-1123 subdomain: lower-case letters, digits, '-' and '.', each label starting and ending with a letter or digit"
	if l == "" || len(l) > maxLabelLen {
		return fmt.Errorf("%s, 1 to %d characters per label", want, maxLabelLen)
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		alnum := 'a' <= c && c <= 'z' || '0' <= c && c <= '9'
		if !alnum && (c != '-' || i == 0 || i == len(l)-1) {
			return errors.New(want)
		}
	}
	return nil
}

// looksLikeIPv4 reports whether s is four all-digit labels, the dotted form
// of an IPv4 address (leading zeros included). IPv6 literals never pass
// checkSubdomain, so they need no check of their own.
func looksLikeIPv4(s string) bool {
	n := 0
	for label := range strings.SplitSeq(s, ".") {
		n++
		for i := 0; i < len(label); i++ {
			if label[i] < '0' || label[i] > '9' {
				return false
			}
		}
	}
	return n == 4
}

// invalidPathSequences and invalidPathSuffixes are the ones the Kubernetes
// API rejects in Exact and Prefix paths; we reject them for every path type,
// because they make a rule mean something other than what it says.
var (
	invalidPathSequences = []string{"//", "/./", "/../", "%2f", "%2F"}
	invalidPathSuffixes  = []string{"/..", "/."}
)

// pathKind maps an Ingress pathType to a route.PathKind. Exact is
// route.PathExact. Prefix, a nil pathType, and ImplementationSpecific are
// route.PathPrefix: Kakehi implements ImplementationSpecific exactly as
// Prefix (element-wise prefix matching, trailing slash ignored), so an
// ImplementationSpecific path and a Prefix path with the same value are the
// same rule. Any other value is an error.
func pathKind(pt *networkingv1.PathType) (route.PathKind, error) {
	if pt == nil {
		return route.PathPrefix, nil
	}
	switch *pt {
	case networkingv1.PathTypeExact:
		return route.PathExact, nil
	case networkingv1.PathTypePrefix, networkingv1.PathTypeImplementationSpecific:
		return route.PathPrefix, nil
	}
	return 0, fmt.Errorf("unsupported pathType %q: must be Exact, Prefix or ImplementationSpecific", string(*pt))
}

// validatePath checks an Ingress path and returns it as the rule path: an
// empty path is "/". A path must start with '/', contain only printable
// ASCII other than space, '?' and '#', and none of invalidPathSequences or
// invalidPathSuffixes. The error says why the path is invalid.
func validatePath(raw string) (string, error) {
	if raw == "" {
		return "/", nil
	}
	if raw[0] != '/' {
		return "", fmt.Errorf("path %q must start with '/'", raw)
	}
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c <= ' ' || c >= 0x7f {
			return "", fmt.Errorf("path %q must contain only printable ASCII characters without spaces (byte 0x%02x at %d)", raw, c, i)
		}
		if c == '?' || c == '#' {
			return "", fmt.Errorf("path %q must not contain %q: a rule matches the path only, never a query or fragment", raw, string(c))
		}
	}
	for _, seq := range invalidPathSequences {
		if strings.Contains(raw, seq) {
			return "", fmt.Errorf("path %q must not contain %q", raw, seq)
		}
	}
	for _, suf := range invalidPathSuffixes {
		if strings.HasSuffix(raw, suf) {
			return "", fmt.Errorf("path %q must not end with %q", raw, suf)
		}
	}
	return raw, nil
}

// routeKey returns the key under which route.Builder stores a rule: the
// path for Exact, the path without trailing slashes for Prefix. Two rules
// with the same host and key are the same rule.
func routeKey(kind route.PathKind, path string) string {
	if kind == route.PathPrefix {
		return strings.TrimRight(path, "/")
	}
	return path
}
