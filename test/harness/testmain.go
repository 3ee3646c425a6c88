package harness

import (
	"fmt"
	"os"
	"testing"
	"time"
)

// Main is the TestMain of a package whose tests need a private network
// namespace and a control plane. Outside the namespace it re-executes the
// test binary inside a new one; inside, it sets the namespace up, starts a
// control plane with crdDirs, runs setup (nil for none), then the tests, then
// the teardown that setup returned (given the tests' exit code), and stops
// the control plane. It exits the process.
func Main(m *testing.M, name string, crdDirs []string, setup func(*ControlPlane) (teardown func(code int), err error)) {
	if !InNetNS() {
		code, err := ReexecInNetNS()
		if err != nil {
			fmt.Fprintln(os.Stderr, name+":", err)
		}
		os.Exit(code)
	}
	os.Exit(runInNetNS(m, name, crdDirs, setup))
}

func runInNetNS(m *testing.M, name string, crdDirs []string, setup func(*ControlPlane) (func(int), error)) int {
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, name+":", err)
		return 1
	}
	if err := SetupNetNS(); err != nil {
		return fail(err)
	}
	cp, err := StartControlPlane(crdDirs...)
	if err != nil {
		return fail(err)
	}
	defer func() { _ = cp.Stop() }()
	teardown := func(int) {}
	if setup != nil {
		if teardown, err = setup(cp); err != nil {
			return fail(err)
		}
	}
	code := m.Run()
	teardown(code)
	RemoveControllerBinary()
	return code
}

// Eventually calls f until it returns nil or within has passed, and then
// fails the test with f's last error. It polls every 2 ms: a deadline on a
// condition, not a sleep standing in for synchronisation.
func Eventually(t testing.TB, within time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v: %v", within, err)
		}
		time.Sleep(2 * time.Millisecond) // poll interval
	}
}
