package main

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"
)

func TestHelpDocumentsEveryRequiredFlag(t *testing.T) {
	var out bytes.Buffer
	_, fs, err := parseFlags([]string{"--help"})
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: err = %v", err)
	}
	fs.SetOutput(&out)
	fs.Usage()
	for _, name := range []string{"kubeconfig", "ingress-class", "controller-name", "http-addr", "https-addr",
		"metrics-addr", "health-addr", "watch-namespace", "leader-elect"} {
		if !strings.Contains(out.String(), "-"+name) {
			t.Errorf("--help does not document --%s", name)
		}
	}
	fs.VisitAll(func(f *flag.Flag) {
		if strings.TrimSpace(f.Usage) == "" {
			t.Errorf("flag --%s has no usage text", f.Name)
		}
	})
}

func TestFlagDefaults(t *testing.T) {
	c, _, err := parseFlags(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, got, want string }{
		{"ingress-class", c.ingressClass, "kakehi"},
		{"controller-name", c.controllerName, "kakehi.dev/ingress-controller"},
		{"http-addr", c.httpAddr, ":8080"},
		{"https-addr", c.httpsAddr, ":8443"},
		{"metrics-addr", c.metricsAddr, ":9090"},
		{"health-addr", c.healthAddr, ":8081"},
		{"watch-namespace", c.watchNamespace, ""},
	} {
		if tc.got != tc.want {
			t.Errorf("--%s default = %q, want %q", tc.name, tc.got, tc.want)
		}
	}
	if c.leaderElect {
		t.Error("--leader-elect defaults to true, want false")
	}
}

func TestBadFlagsNameTheFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--ingress-class", " "}, "--ingress-class"},
		{[]string{"--controller-name", "nodomain"}, "--controller-name"},
		{[]string{"--http-addr", ""}, "--http-addr"},
		{[]string{"--no-such-flag"}, "no-such-flag"},
		{[]string{"stray"}, "stray"},
	} {
		_, fs, err := parseFlags(tc.args)
		if fs != nil {
			fs.SetOutput(&bytes.Buffer{})
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseFlags(%q) = %v, want an error naming %s", tc.args, err, tc.want)
		}
	}
}

func TestPublishFlagsAreValidated(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // "" = valid
	}{
		{[]string{"--publish-service", "ingress/kakehi"}, ""},
		{[]string{"--publish-address", "192.0.2.1,lb.example.com"}, ""},
		{[]string{"--publish-service", "kakehi"}, "--publish-service"},
		{[]string{"--publish-service", "a/b/c"}, "--publish-service"},
		{[]string{"--publish-address", "not valid!"}, "--publish-address"},
		{[]string{"--publish-service", "a/b", "--publish-address", "192.0.2.1"}, "exclusive"},
	} {
		_, _, err := parseFlags(tc.args)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("parseFlags(%q) = %v, want success", tc.args, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("parseFlags(%q) = %v, want an error naming %s", tc.args, err, tc.want)
		}
	}
}

func TestDefaultTLSSecretMustBeNamespaced(t *testing.T) {
	if _, _, err := parseFlags([]string{"--default-tls-secret", "nons"}); err == nil || !strings.Contains(err.Error(), "--default-tls-secret") {
		t.Errorf("err = %v, want one naming --default-tls-secret", err)
	}
	c, _, err := parseFlags([]string{"--default-tls-secret", "ingress/wildcard"})
	if err != nil || c.defaultTLSRef.Namespace != "ingress" || c.defaultTLSRef.Name != "wildcard" {
		t.Errorf("parsed %+v, %v", c, err)
	}
}
