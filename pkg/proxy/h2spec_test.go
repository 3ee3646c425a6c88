package proxy

import (
	"encoding/xml"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// h2specModule is the conformance suite that TestH2Spec runs.
const h2specModule = "github.com/summerwind/h2spec/cmd/h2spec@v2.2.1+incompatible"

// TestH2Spec runs h2spec against a proxy in front of a real HTTP/1.1
// backend and requires every case to pass, on two ports: the plaintext
// port that also serves HTTP/1.1 (h2c with prior knowledge), where only
// http2/3.5 may fail, since an invalid preface is an HTTP/1.1 request
// there and is answered 400 in HTTP/1.1; and a port that speaks only
// HTTP/2 through ServeH2Conn, as a TLS listener does after ALPN "h2".
// It needs the Go module proxy (or a warm module cache), so it runs only
// when KAKEHI_H2SPEC=1; H2SPEC_BIN may name a built h2spec binary.
func TestH2Spec(t *testing.T) {
	if os.Getenv("KAKEHI_H2SPEC") != "1" {
		t.Skip("set KAKEHI_H2SPEC=1 to run h2spec")
	}
	h := newHarness(t)
	b := newBackend(t, "spec")
	h.route(to(b.addr))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); h.srv.ServeH2Conn(nc, nil) }()
		}
	}()
	defer wg.Wait()
	defer l.Close()
	tests := []struct {
		name    string
		addr    string
		allowed map[string]bool
	}{
		{"shared h2c port", h.addr, map[string]bool{"http2/3.5": true}},
		{"HTTP/2-only port", l.Addr().String(), nil},
	}
	for _, tc := range tests {
		passed, failures := runH2Spec(t, tc.addr)
		t.Logf("%s: h2spec %d passed, %d failed", tc.name, passed, len(failures))
		for _, f := range failures {
			if !tc.allowed[strings.Fields(f)[0]] {
				t.Errorf("%s: %s", tc.name, f)
			}
		}
		if passed == 0 {
			t.Errorf("%s: h2spec ran no case", tc.name)
		}
	}
}

// runH2Spec runs h2spec against addr and returns the passed count and the
// failures ("package description: message").
func runH2Spec(t *testing.T, addr string) (int, []string) {
	host, port, _ := net.SplitHostPort(addr)
	report := filepath.Join(t.TempDir(), "h2spec.xml")
	args := []string{"-h", host, "-p", port, "-j", report, "-o", "2"}
	args = append(args, strings.Fields(os.Getenv("H2SPEC_ARGS"))...) // e.g. "-v http2/5.1"
	var cmd *exec.Cmd
	if bin := os.Getenv("H2SPEC_BIN"); bin != "" {
		cmd = exec.Command(bin, args...)
	} else {
		cmd = exec.Command("go", append([]string{"run", h2specModule}, args...)...)
	}
	out, err := cmd.CombinedOutput()
	passed, _, failures := readH2SpecReport(t, report)
	if passed == 0 || testing.Verbose() && os.Getenv("H2SPEC_ARGS") != "" {
		t.Logf("h2spec: %v\n%s", err, out)
	}
	return passed, failures
}

type junitSuites struct {
	Suites []struct {
		Cases []struct {
			Name    string `xml:"name,attr"`
			Package string `xml:"package,attr"`
			Failure *struct {
				Text string `xml:",chardata"`
			} `xml:"failure"`
			Error *struct {
				Text string `xml:",chardata"`
			} `xml:"error"`
			Skipped *struct{} `xml:"skipped"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

// readH2SpecReport counts the cases of h2spec's JUnit report.
func readH2SpecReport(t *testing.T, path string) (passed, failed int, failures []string) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, nil
	}
	var r junitSuites
	if err := xml.Unmarshal(data, &r); err != nil {
		t.Fatalf("h2spec report: %v", err)
	}
	for _, s := range r.Suites {
		for _, c := range s.Cases {
			switch {
			case c.Failure != nil || c.Error != nil:
				failed++
				msg := ""
				if c.Failure != nil {
					msg = c.Failure.Text
				} else {
					msg = c.Error.Text
				}
				failures = append(failures, c.Package+" "+c.Name+": "+strings.TrimSpace(msg))
			case c.Skipped != nil:
			default:
				passed++
			}
		}
	}
	return passed, failed, failures
}
